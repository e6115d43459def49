"""POST /v1/devices with platform "web": a browser's PushSubscription, checked and stored."""

from __future__ import annotations

import time

import httpx

from pushfan.db import Pool
from pushfan.messages import AudienceFilter
from pushfan.registry import stream_targets
from pushfan.webpush import split_wire_token
from tests.fixtures.api import bearer
from tests.webpush.keys import Browser
from tests.webpush.ssrf_table import ACCEPTED, REFUSED


async def test_a_subscription_registers_and_its_keys_reach_the_send_token(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    """Given a browser's subscription, the device is created once (201, then 200) and the
    expander's targets carry the endpoint with the keys."""
    key = await bearer(pool, "devices:write")
    browser = Browser.new()
    sub = {**browser.subscription(ACCEPTED[0]), "expirationTime": None}
    body = {"platform": "web", "app": "alpha", "subscription": sub, "tags": ["news"]}
    first = await api.post("/v1/devices", json=body, headers=key)
    again = await api.post("/v1/devices", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert first.json()["id"] == again.json()["id"]
    pages = [p async for p in stream_targets(pool, 0, 2**62, AudienceFilter(["web"]), 10)]
    [[target]] = pages
    assert target.platform == "web"
    assert split_wire_token(target.token) == (ACCEPTED[0], *_raw(browser), 0)


async def test_the_expiration_time_reaches_the_send_token_in_seconds(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    """expirationTime (ms) is stored and carried to the sender, which stops sending once it
    has passed (tests/webpush/test_provider.py)."""
    key = await bearer(pool, "devices:write")
    browser = Browser.new()
    expires_ms = int((time.time() + 86_400) * 1000) + 789
    sub = {**browser.subscription(ACCEPTED[0]), "expirationTime": expires_ms}
    body = {"platform": "web", "app": "alpha", "subscription": sub}
    assert (await api.post("/v1/devices", json=body, headers=key)).status_code == 201
    [[target]] = [p async for p in stream_targets(pool, 0, 2**62, AudienceFilter(["web"]), 10)]
    assert split_wire_token(target.token) == (ACCEPTED[0], *_raw(browser), expires_ms // 1000)


def _raw(browser: Browser) -> tuple[bytes, bytes]:
    from pushfan.webpush import b64url_decode

    return b64url_decode(browser.p256dh), browser.auth


async def test_every_endpoint_of_the_ssrf_table_gets_a_422_naming_the_reason(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    key = await bearer(pool, "devices:write")
    browser = Browser.new()
    got = {}
    for endpoint, reason in REFUSED:
        body = {"platform": "web", "app": "alpha", "subscription": browser.subscription(endpoint)}
        response = await api.post("/v1/devices", json=body, headers=key)
        got[endpoint] = (response.status_code, str(response.json()["detail"]))
        assert response.status_code == 422 and reason in str(response.json()["detail"]), got
    assert await pool.fetchval("SELECT count(*) FROM devices") == 0


async def test_malformed_web_registrations_are_422(api: httpx.AsyncClient, pool: Pool) -> None:
    key = await bearer(pool, "devices:write")
    sub = Browser.new().subscription(ACCEPTED[1])
    expired = {**sub, "expirationTime": int((time.time() - 60) * 1000)}
    far = {**sub, "expirationTime": 2**53}  # past year 9999: no timestamp holds it
    bad_key = {**sub, "keys": {"p256dh": "BA" + "A" * 85, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}
    cases = [
        ({"platform": "web", "app": "alpha", "token": "x" * 40}, "subscription"),
        ({"platform": "web", "app": "alpha", "subscription": expired}, "expired"),
        ({"platform": "web", "app": "alpha", "subscription": far}, "less than or equal"),
        ({"platform": "web", "app": "alpha", "subscription": bad_key}, "not a point on P-256"),
        ({"platform": "web", "app": "alpha", "subscription": {**sub, "x": 1}}, "extra"),
        ({"platform": "web", "app": "nope", "subscription": sub}, "unknown app"),
        ({"platform": "ios", "app": "alpha", "subscription": sub}, "token"),
    ]
    for body, reason in cases:
        response = await api.post("/v1/devices", json=body, headers=key)
        assert response.status_code == 422 and reason in response.text, (body, response.text)


async def test_a_dev_host_registers_in_development(
    settings_dev: None, api: httpx.AsyncClient, pool: Pool
) -> None:
    key = await bearer(pool, "devices:write")
    sub = Browser.new().subscription("https://127.0.0.1:8445/push/abc")
    body = {"platform": "web", "app": "alpha", "subscription": sub}
    response = await api.post("/v1/devices", json=body, headers=key)
    assert response.status_code == 201, response.text


async def test_the_same_subscription_spelled_differently_is_one_device(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    key = await bearer(pool, "devices:write")
    browser = Browser.new()
    ids = set()
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/xyz",
        "https://FCM.googleapis.com:443/fcm/send/xyz",
    ):
        body = {"platform": "web", "app": "alpha", "subscription": browser.subscription(endpoint)}
        response = await api.post("/v1/devices", json=body, headers=key)
        ids.add(response.json()["id"])
    assert len(ids) == 1
