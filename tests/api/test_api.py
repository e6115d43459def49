"""The REST API against the real PostgreSQL, Redis and RabbitMQ, in process."""

from __future__ import annotations

import asyncio

import aio_pika
import httpx
import pytest

from pushfan import apikeys
from pushfan.db import Pool
from pushfan.messages import decode_expand
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from tests.fixtures.api import queued

ALERT = {"title": "Storm warning", "body": "Stay inside", "data": {"k": "v"}}


async def test_trigger_returns_202_and_publishes_one_plan(
    api: httpx.AsyncClient,
    sender_key: dict[str, str],
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    response = await api.post("/v1/alerts", json=ALERT, headers=sender_key)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and response.headers["location"].endswith(body["id"])
    queue = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).expand, passive=True
    )
    message = await queue.get(timeout=5)
    assert message is not None
    task = decode_expand(message.body)
    assert task.kind == "plan" and task.alert_id == body["id"]
    assert task.notification.collapse_id == body["id"] and task.notification.title == ALERT["title"]


async def test_same_idempotency_key_gives_the_same_alert_and_one_publish(
    api: httpx.AsyncClient,
    sender_key: dict[str, str],
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    """Five concurrent posts with one key: one alert, one plan message."""
    headers = {**sender_key, "idempotency-key": "retry-me"}
    responses = await asyncio.gather(
        *(api.post("/v1/alerts", json=ALERT, headers=headers) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    await asyncio.sleep(0.2)
    # A racing duplicate may publish the plan again before the first marks it published;
    # the expander's first-plan-wins ledger makes that harmless. Normally it is one.
    assert 1 <= await queued(channel, settings) <= 5
    later = await api.post("/v1/alerts", json=ALERT, headers=headers)
    assert later.json()["id"] == responses[0].json()["id"]


async def test_idempotency_key_reused_with_another_body_is_a_conflict(
    api: httpx.AsyncClient, sender_key: dict[str, str]
) -> None:
    headers = {**sender_key, "idempotency-key": "k1"}
    assert (await api.post("/v1/alerts", json=ALERT, headers=headers)).status_code == 202
    other = await api.post("/v1/alerts", json={**ALERT, "title": "x"}, headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**ALERT, "unknown": 1}, "extra_forbidden"),
        ({**ALERT, "title": ""}, "string_too_short"),
        ({**ALERT, "audience": {"apps": ["nope"]}}, "unknown app"),
        ({**ALERT, "audience": {"platforms": ["windows"]}}, "literal_error"),
        ({**ALERT, "data": {"k": 1}}, "string_type"),
        ({**ALERT, "body": "x" * 2001}, "string_too_long"),
        ({**ALERT, "data": {f"k{i}": "v" * 120 for i in range(32)}}, "APNs payload"),
        ({**ALERT, "ttl": 0}, "greater_than_equal"),
    ],
)
async def test_bad_alerts_get_a_4xx_with_a_reason_and_nothing_is_queued(
    api: httpx.AsyncClient,
    sender_key: dict[str, str],
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    body: dict[str, object],
    reason: str,
) -> None:
    response = await api.post("/v1/alerts", json=body, headers=sender_key)
    assert 400 <= response.status_code < 500
    assert reason in response.text
    assert await queued(channel, settings) == 0


async def test_oversized_body_is_413(
    api: httpx.AsyncClient, sender_key: dict[str, str], settings: Settings
) -> None:
    blob = "x" * (settings.max_body_bytes + 1)
    response = await api.post("/v1/alerts", content=blob, headers=sender_key)
    assert response.status_code == 413


async def test_every_route_checks_the_key(api: httpx.AsyncClient, pool: Pool) -> None:
    """No key: 401. Unknown key: 401. Wrong scope or revoked: 403."""
    routes = [
        ("POST", "/v1/alerts", ALERT),
        ("GET", "/v1/alerts/x", None),
        ("POST", "/v1/devices", {}),
        ("DELETE", "/v1/devices/1", None),
    ]
    _, wrong_plain = await apikeys.create(pool, "wrong", ["notifications:send"])
    revoked, revoked_plain = await apikeys.create(pool, "old", ["alerts:send", "devices:write"])
    await apikeys.revoke(pool, revoked.id)
    for method, path, body in routes:
        none = await api.request(method, path, json=body)
        assert none.status_code == 401, (method, path)
        bogus = await api.request(
            method, path, json=body, headers={"authorization": "Bearer pf_dead_beef"}
        )
        assert bogus.status_code == 401
        for plain in (wrong_plain, revoked_plain):
            forbidden = await api.request(
                method, path, json=body, headers={"authorization": f"Bearer {plain}"}
            )
            assert forbidden.status_code == 403, (method, path, forbidden.text)
    assert (await api.get("/healthz")).status_code == 200


async def test_get_alert_reports_status_and_counts(
    api: httpx.AsyncClient, sender_key: dict[str, str]
) -> None:
    created = (await api.post("/v1/alerts", json=ALERT, headers=sender_key)).json()
    got = await api.get(f"/v1/alerts/{created['id']}", headers=sender_key)
    assert got.status_code == 200 and got.json()["status"] == "queued"
    assert got.json()["counts"]["delivered"] == 0
    assert (await api.get("/v1/alerts/not-a-uuid", headers=sender_key)).status_code == 404


async def test_device_registration_is_idempotent_and_checks_tokens(
    api: httpx.AsyncClient, sender_key: dict[str, str]
) -> None:
    device = {"platform": "ios", "app": "alpha", "token": "AB" * 32, "tags": ["news"]}
    first = await api.post("/v1/devices", json=device, headers=sender_key)
    again = await api.post("/v1/devices", json=device, headers=sender_key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    bad = await api.post("/v1/devices", json={**device, "token": "zz" * 32}, headers=sender_key)
    assert bad.status_code == 422 and "64 hex" in bad.text
    android = {"platform": "android", "app": "alpha", "token": "short"}
    assert (await api.post("/v1/devices", json=android, headers=sender_key)).status_code == 422
    gone = await api.delete(f"/v1/devices/{first.json()['id']}", headers=sender_key)
    assert gone.status_code == 204
    again_gone = await api.delete(f"/v1/devices/{first.json()['id']}", headers=sender_key)
    assert again_gone.status_code == 404
    huge = await api.delete(f"/v1/devices/{2**70}", headers=sender_key)
    assert huge.status_code == 422
