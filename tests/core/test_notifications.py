"""POST /v1/notifications and its expansion: explicit targets, same path as alerts."""

from __future__ import annotations

import aio_pika
import asyncpg
import httpx

from pushfan import alerts, registry
from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.messages import (
    AudienceFilter,
    ExpandTask,
    TargetSpec,
    TokenTarget,
    UserTarget,
    decode_batch,
    decode_expand,
)
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.seed import seed_devices
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.expander import Expander
from pushfan.workers.targets import resolve
from tests.core.api_fixtures import api, bearer, queued

__all__ = ["api"]
PUSH = {"title": "Your order shipped", "body": "Arrives Tuesday"}


async def drain(channel: aio_pika.abc.AbstractChannel, queue: str) -> list[bytes]:
    q = await channel.declare_queue(queue, passive=True)
    bodies = []
    while (message := await q.get(fail=False, no_ack=True)) is not None:
        bodies.append(message.body)
    return bodies


async def seeded(pool: Pool, count: int) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        await seed_devices(conn, count, apps=["alpha", "beta"])
    return await pool.fetch("SELECT id, platform, app, token, user_id FROM devices ORDER BY id")


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


async def test_expansion_resolves_ids_tokens_and_users_once_each_and_only_active(
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    cancels: CancelWatch,
) -> None:
    """Given devices named by id, by token and by user (with overlaps and a dead one),
    when the targets task is expanded twice (a redelivery),
    then each active device is batched once per expansion with the same batch ids, and
    the audience is counted once."""
    rows = await seeded(pool, 40)
    await registry.deactivate(pool, [rows[1]["id"]])
    spec = TargetSpec(
        device_ids=[rows[0]["id"], rows[1]["id"], rows[2]["id"], 10**12],
        tokens=[TokenTarget(rows[2]["platform"], rows[2]["app"], rows[2]["token"])]
        + [TokenTarget(r["platform"], r["app"], r["token"]) for r in rows[3:30]],
        user_ids=[UserTarget(rows[30]["app"], rows[30]["user_id"]), UserTarget("beta", "none")],
    )
    expected = {rows[0]["id"], rows[2]["id"], *(r["id"] for r in rows[3:31])}
    assert [t.id for t in await resolve(pool, spec, page_size=7)] == sorted(expected)

    alert, _ = await alerts.create(
        pool, alerts.AlertIn("t", "b", {}, AudienceFilter(), 600, "high", spec), None, "test"
    )
    task = ExpandTask(
        alert.id, "targets", AudienceFilter(), alert.notification(), shard=0, targets=spec
    )
    names = QueueNames.for_prefix(settings.queue_prefix)
    small = settings.model_copy(update={"batch_size": 5, "expander_page_size": 7})
    expander = Expander(small, pool, progress, Publisher(channel, 5), cancels)
    runs = []
    for _ in range(2):
        counts = await expander.expand_targets(task)
        batches = [decode_batch(b) for q in names.send.values() for b in await drain(channel, q)]
        runs.append(batches)
        assert counts.audience == len(expected) and counts.expanded
    first, second = runs
    ids = [d for b in first for d in b.device_ids]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert max(len(b.device_ids) for b in first) <= 5
    assert {b.batch_id for b in first} == {b.batch_id for b in second}
    # Stages live in Redis; the row is written again only when the alert ends.
    assert (await expander.progress.counts(alert.id)).stage == "sending"
    assert (await alerts.get(pool, alert.id)).status == "queued"  # type: ignore[union-attr]
