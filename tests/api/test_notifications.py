"""POST /v1/notifications: explicit targets, same path as alerts (their expansion is
tests/workers/test_targets.py)."""

from __future__ import annotations

import aio_pika
import httpx

from pushfan.db import Pool
from pushfan.messages import (
    TargetSpec,
    UserTarget,
    decode_expand,
)
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from tests.fixtures.api import bearer, queued
from tests.fixtures.services import drain

PUSH = {"title": "Your order shipped", "body": "Arrives Tuesday"}


async def test_targeted_push_is_one_targets_message_and_readable_as_a_notification(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    key = await bearer(pool, "notifications:send")
    body = {**PUSH, "to": {"device_ids": [1, 2], "user_ids": [{"app": "alpha", "user_id": "u"}]}}
    response = await api.post("/v1/notifications", json=body, headers=key)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["kind"] == "targeted" and response.headers["location"].endswith(created["id"])
    (message,) = await drain(channel, QueueNames.for_prefix(settings.queue_prefix).expand)
    task = decode_expand(message)
    assert task.kind == "targets" and task.alert_id == created["id"]
    assert task.targets == TargetSpec(device_ids=[1, 2], user_ids=[UserTarget("alpha", "u")])
    got = await api.get(f"/v1/notifications/{created['id']}", headers=key)
    assert got.status_code == 200 and got.json()["status"] == "queued"


async def test_a_global_alert_is_not_a_notification(api: httpx.AsyncClient, pool: Pool) -> None:
    key = await bearer(pool, "alerts:send", "notifications:send")
    alert = (await api.post("/v1/alerts", json=PUSH, headers=key)).json()
    assert (await api.get(f"/v1/notifications/{alert['id']}", headers=key)).status_code == 404


async def test_idempotency_key_gives_the_same_notification(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    key = {**await bearer(pool, "notifications:send"), "idempotency-key": "order-42"}
    body = {**PUSH, "to": {"device_ids": [7]}}
    first = await api.post("/v1/notifications", json=body, headers=key)
    again = await api.post("/v1/notifications", json=body, headers=key)
    assert first.json()["id"] == again.json()["id"]
    assert await queued(channel, settings) == 1
    other = {**body, "to": {"device_ids": [8]}}
    assert (await api.post("/v1/notifications", json=other, headers=key)).status_code == 409
