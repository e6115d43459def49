"""Dashboard sign-in: argon2 passwords, session cookie, CSRF on every POST, sign-out."""

from __future__ import annotations

import aio_pika
import httpx
import pytest

from pushfan import admins
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import ADMIN_PASSWORD, ADMIN_USER, csrf_of, in_process, queued, sign_in


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A sign-in budget that refills once per 20 s: a loaded machine's slow password
    hashing (seconds per attempt) must not refill it while a test spends it."""
    return settings.model_copy(update={"login_attempts_per_min": 3})


async def test_passwords_are_stored_as_argon2id(pool: Pool, admin: admins.Admin) -> None:
    stored = await pool.fetchval("SELECT password_hash FROM admins WHERE id = $1", admin.id)
    assert stored.startswith("$argon2id$") and ADMIN_PASSWORD not in stored


async def test_sign_in_sets_a_strict_httponly_session_cookie(
    api: httpx.AsyncClient, admin: admins.Admin
) -> None:
    response = await sign_in(api)
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    cookie = response.headers["set-cookie"].lower()
    assert "pushfan_session=" in cookie and "httponly" in cookie
    assert "samesite=strict" in cookie and "path=/admin" in cookie
    assert "secure" not in cookie  # development only: plain HTTP on loopback
    page = await api.get("/admin")
    assert page.status_code == 200 and ADMIN_USER in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_outside_development_the_cookie_is_secure(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel, admin: admins.Admin
) -> None:
    production = settings.model_copy(update={"environment": "production"})
    async with in_process(production, "https://api") as client:
        response = await sign_in(client)
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    api: httpx.AsyncClient, admin: admins.Admin
) -> None:
    wrong = await sign_in(api, "not the password at all")
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert "not the password" not in wrong.text and "pushfan_session" not in str(wrong.cookies)
    assert (await api.get("/admin")).status_code == 303


async def test_sign_in_without_its_csrf_token_is_refused(
    api: httpx.AsyncClient, admin: admins.Admin
) -> None:
    response = await api.post(
        "/admin/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 403 and "pushfan_session" not in response.headers.get(
        "set-cookie", ""
    )


async def test_repeated_failed_sign_ins_are_limited(
    api: httpx.AsyncClient, admin: admins.Admin, settings: Settings
) -> None:
    statuses = [
        (await sign_in(api, "wrong password here")).status_code
        for _ in range(int(settings.login_attempts_per_min) + 1)
    ]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}


async def test_dashboard_posts_need_the_csrf_token(
    api: httpx.AsyncClient,
    admin: admins.Admin,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    await sign_in(api)
    alert = {"title": "t", "body": "b"}
    missing = await api.post("/admin/api/alerts", json=alert)
    forged = await api.post("/admin/api/alerts", json=alert, headers={"x-csrf-token": "guess"})
    assert missing.status_code == forged.status_code == 403
    assert await queued(channel, settings) == 0
    logout = await api.post("/admin/logout", data={"csrf_token": "guess"})
    assert logout.status_code == 403


async def test_sign_out_ends_the_session_server_side(
    api: httpx.AsyncClient, admin: admins.Admin
) -> None:
    await sign_in(api)
    page = await api.get("/admin")
    cookie = api.cookies.get("pushfan_session")
    out = await api.post("/admin/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    # The old cookie, replayed, no longer opens anything.
    api.cookies.clear()
    replay = await api.get("/admin/api/alerts", headers={"cookie": f"pushfan_session={cookie}"})
    assert replay.status_code == 401
