"""Sign-in: guessing from many addresses slows the attacker without locking the owner out
(the rule in pushfan.signin and the README); a password reset and "sign out everywhere"
end every session of the admin."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from pushfan import admins
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import ADMIN_PASSWORD, ADMIN_USER, client, csrf_of, sign_in

OWNER_ADDRESS = "192.0.2.10"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A budget that refills slowly (one attempt per 15 s), so a loaded machine's slow
    password hashing never refills it mid-test."""
    return settings.model_copy(update={"login_attempts_per_min": 4})


async def attack(app: FastAPI, attempts: int) -> list[int]:
    """Wrong passwords for the admin, each from another address (a botnet)."""
    statuses = []
    for n in range(attempts):
        statuses.append(
            (await sign_in(client(app, f"198.51.100.{n}"), "guess number one")).status_code
        )
    return statuses


async def test_a_lockout_attempt_leaves_the_owner_a_way_in(
    app: FastAPI, admin: admins.Admin, settings: Settings
) -> None:
    """Given the owner signed in once from their browser at their address, when a botnet
    spends the username's budget, then the owner still gets in from that browser (even on
    another address) and from that address (in another browser); a new browser on a new
    address waits the short Retry-After, and then gets in."""
    browser = client(app, OWNER_ADDRESS)
    assert (await sign_in(browser)).status_code == 303
    assert "pushfan_device" in browser.cookies

    statuses = await attack(app, 3 * int(settings.login_attempts_per_min))
    assert 401 in statuses and statuses[-1] == 429  # the attacker is slowed

    travelling = client(app, "203.0.113.7")
    travelling.cookies.set("pushfan_device", browser.cookies["pushfan_device"], path="/admin/login")
    assert (await sign_in(travelling)).status_code == 303, "known browser"
    assert (await sign_in(client(app, OWNER_ADDRESS))).status_code == 303, "known address"

    stranger = await sign_in(client(app, "203.0.113.99"))
    assert stranger.status_code == 429 and "Too many attempts" in stranger.text
    wait = int(stranger.headers["retry-after"])
    assert 1 <= wait <= 60 / settings.login_attempts_per_min + 1
    await asyncio.sleep(wait)
    assert (await sign_in(client(app, "203.0.113.99"))).status_code == 303, "after the delay"


async def test_one_address_spraying_many_usernames_is_limited(
    app: FastAPI, admin: admins.Admin, settings: Settings
) -> None:
    sprayer = client(app, "198.51.100.200")
    statuses = [
        (await sign_in(sprayer, "guess number one", f"user{n}")).status_code
        for n in range(int(settings.login_attempts_per_min) + 2)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429


async def signed_in_browser(app: FastAPI, address: str) -> httpx.AsyncClient:
    browser = client(app, address)
    assert (await sign_in(browser)).status_code == 303
    browser.headers["x-csrf-token"] = csrf_of((await browser.get("/admin")).text)
    assert (await browser.get("/admin/api/alerts")).status_code == 200
    return browser


async def test_a_password_reset_ends_every_session(
    app: FastAPI, pool: Pool, admin: admins.Admin
) -> None:
    first, second = (
        await signed_in_browser(app, "192.0.2.1"),
        await signed_in_browser(app, "192.0.2.2"),
    )
    await admins.create(pool, ADMIN_USER, "a brand new password")
    for browser in (first, second):
        assert (await browser.get("/admin/api/alerts")).status_code == 401
        assert (await browser.get("/admin")).status_code == 303  # back to sign-in
    assert (await sign_in(first)).status_code == 401  # the old password is gone
    assert (await sign_in(first, "a brand new password")).status_code == 303
    assert (await first.get("/admin/api/alerts")).status_code == 200


async def test_sign_out_everywhere_ends_every_session(
    app: FastAPI, pool: Pool, admin: admins.Admin
) -> None:
    here, elsewhere = (
        await signed_in_browser(app, "192.0.2.3"),
        await signed_in_browser(app, "192.0.2.4"),
    )
    forged = await here.post("/admin/logout-everywhere", headers={"x-csrf-token": "guess"})
    assert forged.status_code == 403
    assert (await elsewhere.get("/admin/api/alerts")).status_code == 200
    out = await here.post("/admin/logout-everywhere")
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    for browser in (here, elsewhere):
        assert (await browser.get("/admin/api/alerts")).status_code == 401
    assert (await sign_in(elsewhere, ADMIN_PASSWORD)).status_code == 303  # a new one works


async def test_the_dashboard_offers_sign_out_everywhere(app: FastAPI, admin: admins.Admin) -> None:
    browser = await signed_in_browser(app, "192.0.2.5")
    page = (await browser.get("/admin")).text
    assert 'action="/admin/logout-everywhere"' in page
