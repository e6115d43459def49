"""APNs environments: a device registers its host (production or sandbox), the expander
batches per (provider, app, environment) and the batch names the host the sender uses."""

from __future__ import annotations

from typing import Any

import httpx

from pushfan import registry
from pushfan.db import Pool
from pushfan.messages import AudienceFilter, ExpandTask, Notification, decode_batch
from pushfan.provider import Provider
from pushfan.topology import QueueNames
from pushfan.workers.batching import Batcher
from tests.fixtures.api import bearer

IOS = "ab" * 32
ANDROID = "x" * 40 + ":APA91b" + "y" * 100


async def test_a_device_registers_its_apns_environment(api: httpx.AsyncClient, pool: Pool) -> None:
    headers = await bearer(pool, "devices:write")
    body = {"platform": "ios", "app": "alpha", "token": IOS, "apns_environment": "sandbox"}
    created = await api.post("/v1/devices", json=body, headers=headers)
    assert created.status_code == 201
    stored = "SELECT apns_environment FROM devices WHERE id = $1"
    assert await pool.fetchval(stored, created.json()["id"]) == "sandbox"
    # Re-registering from a production build moves it to the production host.
    again = await api.post(
        "/v1/devices", json={**body, "apns_environment": "production"}, headers=headers
    )
    assert again.status_code == 200
    assert await pool.fetchval(stored, created.json()["id"]) == "production"
    plain = {"platform": "ios", "app": "alpha", "token": "cd" * 32}
    default = await api.post("/v1/devices", json=plain, headers=headers)
    assert await pool.fetchval(stored, default.json()["id"]) == "production"


async def test_sandbox_is_for_ios_devices_and_named_exactly(
    api: httpx.AsyncClient, pool: Pool
) -> None:
    headers = await bearer(pool, "devices:write")
    android = {"platform": "android", "app": "alpha", "token": ANDROID}
    refused = await api.post(
        "/v1/devices", json={**android, "apns_environment": "sandbox"}, headers=headers
    )
    assert refused.status_code == 422 and "ios devices only" in refused.text
    ios = {"platform": "ios", "app": "alpha", "token": IOS, "apns_environment": "development"}
    assert (await api.post("/v1/devices", json=ios, headers=headers)).status_code == 422
    assert await pool.fetchval("SELECT count(*) FROM devices") == 0


class Published:
    """The publisher's one method the batcher calls, keeping what it was given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, str]] = []

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        self.messages.append((queue, body, message_id))


async def test_batches_are_formed_per_provider_app_and_environment() -> None:
    task = ExpandTask(
        alert_id="a1",
        kind="shard",
        audience=AudienceFilter(),
        notification=Notification(title="t", body="b"),
        shard=3,
    )
    targets = [
        registry.Target(1, "ios", "alpha", "t1", "production"),
        registry.Target(2, "ios", "alpha", "t2", "sandbox"),
        registry.Target(3, "android", "alpha", "t3", "production"),
        registry.Target(4, "ios", "alpha", "t4", "sandbox"),
        registry.Target(5, "ios", "beta", "t5", "sandbox"),
    ]
    published = Published()
    queues = QueueNames.for_prefix("q")
    publisher: Any = published
    async with Batcher(publisher, queues, 500, task) as batcher:
        await batcher.add(targets)
    batches = sorted(
        (decode_batch(body) for _, body, _ in published.messages), key=lambda b: b.batch_id
    )
    assert [(b.batch_id, b.environment, b.route, b.device_ids) for b in batches] == [
        ("a1:3:apns-sandbox:alpha:0", "sandbox", "alpha@sandbox", [2, 4]),
        ("a1:3:apns-sandbox:beta:0", "sandbox", "beta@sandbox", [5]),
        ("a1:3:apns:alpha:0", "production", "alpha", [1]),
        ("a1:3:fcm:alpha:0", "production", "alpha", [3]),
    ]
    assert {q for q, _, _ in published.messages} == {
        queues.send[Provider.APNS],
        queues.send[Provider.FCM],
    }
