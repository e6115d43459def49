"""send_at on POST /v1/alerts and /v1/notifications: 202 at once, `scheduled`, nothing
queued until the workers' scheduler fires it (tests/workers/test_scheduler.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest

from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import bearer, queued

PUSH = {"title": "Sale starts", "body": "Now"}


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_send_at_schedules_and_get_shows_the_schedule(
    api: httpx.AsyncClient, pool: Pool, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    key = await bearer(pool, "alerts:send")
    send_at = at(3600)
    response = await api.post("/v1/alerts", json={**PUSH, "send_at": send_at}, headers=key)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "scheduled"
    assert datetime.fromisoformat(created["send_at"]) == datetime.fromisoformat(send_at)
    assert await queued(channel, settings) == 0
    got = (await api.get(f"/v1/alerts/{created['id']}", headers=key)).json()
    assert got["status"] == "scheduled" and got["send_at"] == created["send_at"]
    assert got["fired_at"] is None and got["counts"]["audience"] is None
    # the TTL counts from send_at, not from the request
    expires = datetime.fromisoformat(got["expires_at"]) - datetime.fromisoformat(send_at)
    assert expires == timedelta(seconds=3600)


async def test_a_scheduled_notification_is_not_queued(
    api: httpx.AsyncClient, pool: Pool, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    key = await bearer(pool, "notifications:send")
    body = {**PUSH, "to": {"device_ids": [1]}, "send_at": at(60)}
    response = await api.post("/v1/notifications", json=body, headers=key)
    assert response.status_code == 202 and response.json()["status"] == "scheduled"
    assert await queued(channel, settings) == 0


async def test_cancel_before_the_time_ends_the_alert(
    api: httpx.AsyncClient, pool: Pool, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    key = await bearer(pool, "alerts:send")
    created = (await api.post("/v1/alerts", json={**PUSH, "send_at": at(60)}, headers=key)).json()
    cancelled = await api.post(f"/v1/alerts/{created['id']}/cancel", headers=key)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None
    assert body["counts"]["delivered"] == 0 and await queued(channel, settings) == 0


async def test_a_retry_with_the_same_key_is_the_same_scheduled_alert(
    api: httpx.AsyncClient, pool: Pool, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    key = {**await bearer(pool, "alerts:send"), "idempotency-key": "sale-1"}
    body = {**PUSH, "send_at": at(600)}
    first = await api.post("/v1/alerts", json=body, headers=key)
    again = await api.post("/v1/alerts", json=body, headers=key)
    assert first.json()["id"] == again.json()["id"] and await queued(channel, settings) == 0
    other = await api.post("/v1/alerts", json={**body, "send_at": at(900)}, headers=key)
    assert other.status_code == 409


async def test_a_retry_after_send_at_passed_still_gets_its_alert(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    """An accepted request retried once its send_at is past is the same alert, not a 422;
    the same body under a new key is refused."""
    key = {**await bearer(pool, "alerts:send"), "idempotency-key": "sale-2"}
    body = {**PUSH, "send_at": at(0.5)}
    first = await api.post("/v1/alerts", json=body, headers=key)
    assert first.status_code == 202, first.text
    await asyncio.sleep(0.6)
    again = await api.post("/v1/alerts", json=body, headers=key)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other = {**key, "idempotency-key": "sale-3"}
    assert (await api.post("/v1/alerts", json=body, headers=other)).status_code == 422


@pytest.mark.parametrize(
    ("send_at", "reason"),
    [
        (-5, "send_at is in the past"),
        (31 * 24 * 3600, "send_at is more than 30 days ahead"),
    ],
)
async def test_send_at_outside_the_window_is_refused(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    send_at: float,
    reason: str,
) -> None:
    key = await bearer(pool, "alerts:send")
    response = await api.post("/v1/alerts", json={**PUSH, "send_at": at(send_at)}, headers=key)
    assert response.status_code == 422 and response.json()["detail"] == reason
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 0
    assert await queued(channel, settings) == 0


@pytest.mark.parametrize("send_at", ["naive", "tomorrow", "unix"])
async def test_send_at_must_be_rfc3339_with_an_offset(
    api: httpx.AsyncClient, pool: Pool, send_at: object
) -> None:
    key = await bearer(pool, "alerts:send")
    soon = datetime.now(UTC) + timedelta(hours=1)
    send_at = {"naive": soon.replace(tzinfo=None).isoformat(), "unix": int(soon.timestamp())}.get(
        str(send_at), send_at
    )
    response = await api.post("/v1/alerts", json={**PUSH, "send_at": send_at}, headers=key)
    assert response.status_code == 422, response.text
