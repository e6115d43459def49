"""`web` as an audience filter value: the REST trigger and the dashboard's estimate."""

from __future__ import annotations

import httpx

from loadtest.simulators.webpush_keys import web_subscription
from pushfan import admins, webpush
from pushfan.db import Pool
from pushfan.messages import Notification
from pushfan.seed import seed_devices
from tests.fixtures.api import bearer, csrf_of, sign_in


async def test_the_estimate_counts_web_devices_apart(
    api: httpx.AsyncClient, pool: Pool, admin: admins.Admin
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(
            conn,
            400,
            apps=["alpha", "beta"],
            web_fraction=0.25,
            web_subscription=web_subscription(1, "https://127.0.0.1:1"),
        )
    web = await pool.fetchval("SELECT count(*) FROM devices WHERE platform = 'web'")
    assert 80 < web < 120
    await sign_in(api)
    csrf = {"x-csrf-token": csrf_of((await api.get("/admin")).text)}
    estimate = (await api.get("/admin/api/estimate?platforms=web", headers=csrf)).json()
    assert estimate["audience"] == web
    both = (await api.get("/admin/api/estimate?platforms=web&platforms=ios")).json()
    assert web < both["audience"] < 400


async def test_an_alert_may_target_web_only(api: httpx.AsyncClient, pool: Pool) -> None:
    key = await bearer(pool, "alerts:send")
    body = {"title": "t", "body": "b", "audience": {"platforms": ["web"]}}
    assert (await api.post("/v1/alerts", json=body, headers=key)).status_code == 202
    body["audience"] = {"platforms": ["windows"]}
    assert (await api.post("/v1/alerts", json=body, headers=key)).status_code == 422


def test_the_web_payload_limit_is_one_aes128gcm_record_of_a_4096_byte_message() -> None:
    """Checked at submit with the other providers' limits (pushfan.trigger.check)."""
    fits = Notification(title="t", body="b" * (webpush.MAX_PLAINTEXT_BYTES - 23))
    assert len(webpush.render(fits)) == webpush.MAX_PLAINTEXT_BYTES == 3993
    assert webpush.oversize_reason(fits) is None
    over = Notification(title="t", body="b" * (webpush.MAX_PLAINTEXT_BYTES - 22))
    assert webpush.oversize_reason(over) == (
        "rendered Web Push payload is 3994 bytes; the limit is 3993"
    )
