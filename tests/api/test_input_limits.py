"""Every input limit of the REST triggers: a 4xx that says what is wrong, nothing queued.

(The alert body's own limits beyond these are in test_api.py; each row here is one limit.)
"""

from __future__ import annotations

import aio_pika
import httpx
import pytest

from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import bearer, queued

ALERT: dict[str, object] = {"title": "t", "body": "b"}
IOS = "ab" * 32
ANDROID = "x" * 40 + ":APA91b" + "y" * 100


def to(**targets: object) -> dict[str, object]:
    return {**ALERT, "to": targets}


ALERT_LIMITS = [
    ({**ALERT, "title": "t" * 201}, 422, "string_too_long"),
    ({**ALERT, "body": ""}, 422, "string_too_short"),
    ({**ALERT, "audience": {"tags": [f"t{i}" for i in range(33)]}}, 422, "too_long"),
    ({**ALERT, "audience": {"tags": ["has space"]}}, 422, "string_pattern_mismatch"),
    ({**ALERT, "data": {f"k{i}": "v" for i in range(33)}}, 422, "too_long"),
    ({**ALERT, "data": {"k": "v" * 4000}}, 422, "payload is"),
    ({**ALERT, "ttl": 28 * 24 * 3600 + 1}, 422, "less_than_equal"),
    ({**ALERT, "priority": "urgent"}, 422, "literal_error"),
    ({**ALERT, "audience": {"apps": ["nope"]}}, 422, "unknown app"),
    ({**ALERT, "colour": "red"}, 422, "extra_forbidden"),  # `sound` is a field now
]

NOTIFICATION_LIMITS = [
    (to(), 422, "1 to 10000 targets"),
    (to(device_ids=list(range(1, 10_002))), 422, "too_long"),
    (
        to(device_ids=list(range(1, 6_000)), user_ids=[{"app": "alpha", "user_id": "u"}] * 4_002),
        422,
        "1 to 10000 targets",
    ),
    (to(device_ids=[0]), 422, "greater_than_equal"),
    (to(tokens=[{"platform": "ios", "app": "alpha", "token": "zz" * 32}]), 422, "64 hex"),
    (
        to(tokens=[{"platform": "android", "app": "alpha", "token": "bad token " * 5}]),
        422,
        "FCM registration token",
    ),
    (to(tokens=[{"platform": "ios", "app": "gamma", "token": IOS}]), 422, "unknown app"),
    (to(user_ids=[{"app": "alpha", "user_id": "u" * 257}]), 422, "string_too_long"),
    (to(device_ids=[1], extra=[2]), 422, "extra_forbidden"),
    ({**to(device_ids=[1]), "data": {"k": "v" * 4000}}, 422, "payload is"),
    ({**to(device_ids=[1]), "title": ""}, 422, "string_too_short"),
]


@pytest.mark.parametrize(("body", "status", "reason"), ALERT_LIMITS)
async def test_alert_limits(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    body: dict[str, object],
    status: int,
    reason: str,
) -> None:
    response = await api.post("/v1/alerts", json=body, headers=await bearer(pool, "alerts:send"))
    assert response.status_code == status and reason in response.text, response.text[:500]
    assert await queued(channel, settings) == 0
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 0


@pytest.mark.parametrize(("body", "status", "reason"), NOTIFICATION_LIMITS)
async def test_notification_limits(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    body: dict[str, object],
    status: int,
    reason: str,
) -> None:
    key = await bearer(pool, "notifications:send")
    response = await api.post("/v1/notifications", json=body, headers=key)
    assert response.status_code == status and reason in response.text, response.text[:500]
    assert await queued(channel, settings) == 0
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 0


async def test_the_largest_targeted_push_is_accepted(
    api: httpx.AsyncClient, pool: Pool, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    """10,000 FCM tokens is allowed (~1.6 MB of JSON would pass the body limit only if it
    were raised, so this uses ids and tokens mixed within the default 1 MiB)."""
    tokens = [{"platform": "android", "app": "alpha", "token": ANDROID}] * 2_000
    body = to(device_ids=list(range(1, 8_001)), tokens=tokens)
    key = await bearer(pool, "notifications:send")
    response = await api.post("/v1/notifications", json=body, headers=key)
    assert response.status_code == 202, response.text[:500]
    assert await queued(channel, settings) == 1


@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/notifications"])
async def test_bodies_over_the_limit_are_413_and_nothing_is_queued(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    path: str,
) -> None:
    key = await bearer(pool, "alerts:send", "notifications:send")
    blob = b"{" + b" " * settings.max_body_bytes + b"}"
    response = await api.post(
        path, content=blob, headers={**key, "content-type": "application/json"}
    )
    assert response.status_code == 413 and "bytes" in response.json()["detail"]
    assert await queued(channel, settings) == 0
