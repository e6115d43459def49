"""The expander against the real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

from collections import Counter

import aio_pika
import pytest

from pushfan import alerts
from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.messages import AudienceFilter, ExpandTask, SendBatch, decode_batch, decode_expand
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.seed import seed_devices
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.expander import Expander


@pytest.fixture
def small_shards(settings: Settings) -> Settings:
    return settings.model_copy(update={"shard_size": 1_000, "expander_page_size": 300})


@pytest.fixture
def expander(
    small_shards: Settings,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
) -> Expander:
    return Expander(small_shards, pool, progress, Publisher(channel, 5), cancels)


@pytest.fixture
def names(small_shards: Settings) -> QueueNames:
    return QueueNames.for_prefix(small_shards.queue_prefix)


async def make_alert(pool: Pool, audience: AudienceFilter | None = None) -> ExpandTask:
    audience = audience or AudienceFilter()
    alert, _ = await alerts.create(
        pool, alerts.AlertIn("t", "b", {}, audience, 600, "high"), None, None
    )
    return ExpandTask(alert.id, "plan", audience, alert.notification())


async def drain(channel: aio_pika.abc.AbstractChannel, queue: str) -> list[bytes]:
    q = await channel.declare_queue(queue, passive=True)
    bodies = []
    while (message := await q.get(fail=False, no_ack=True)) is not None:
        bodies.append(message.body)
    return bodies


async def expand_all(
    expander: Expander,
    channel: aio_pika.abc.AbstractChannel,
    names: QueueNames,
    task: ExpandTask,
) -> list[ExpandTask]:
    await expander.plan(task)
    shards = [decode_expand(b) for b in await drain(channel, names.expand)]
    for shard in shards:
        await expander.expand_shard(shard)
    return shards


async def batches(channel: aio_pika.abc.AbstractChannel, names: QueueNames) -> list[SendBatch]:
    found = []
    for queue in names.send.values():
        found += [decode_batch(b) for b in await drain(channel, queue)]
    return found


async def test_every_active_device_lands_in_exactly_one_batch(
    expander: Expander,
    names: QueueNames,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    """Shards of 1,000 ids, pages of 300, batches of at most 500 per (provider, app)."""
    async with pool.acquire() as conn:
        await seed_devices(conn, 2_345, apps=["alpha", "beta"])
    await pool.execute("UPDATE devices SET active = false WHERE id % 100 = 0")
    task = await make_alert(pool)
    shards = await expand_all(expander, channel, names, task)
    assert [(s.lo, s.hi) for s in shards] == [(1, 1001), (1001, 2001), (2001, 2346)]
    found = await batches(channel, names)
    ids = [d for b in found for d in b.device_ids]
    assert sorted(ids) == [i for i in range(1, 2_346) if i % 100]
    rows = {r["id"]: r for r in await pool.fetch("SELECT id, platform, app, token FROM devices")}
    for batch in found:
        assert 0 < len(batch.device_ids) <= 500
        assert len(batch.tokens) == len(batch.device_ids)
        expected_platform = "ios" if batch.provider == "apns" else "android"
        for device_id, token in zip(batch.device_ids, batch.tokens, strict=True):
            row = rows[device_id]
            assert (row["platform"], row["app"], row["token"]) == (
                expected_platform,
                batch.app,
                token,
            )
    counts = await progress.counts(task.alert_id)
    assert counts.expanded and counts.audience == len(ids) and counts.stage == "sending"
    assert (await alerts.get(pool, task.alert_id)).status == "queued"  # type: ignore[union-attr]


async def test_redelivered_shard_recreates_the_same_batches_and_counts_once(
    expander: Expander,
    names: QueueNames,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 1_800, apps=["alpha", "beta"])
    task = await make_alert(pool)
    shards = await expand_all(expander, channel, names, task)
    first = {b.batch_id: b for b in await batches(channel, names)}
    await expander.plan(task)  # the plan redelivered: the same shards again
    again_shards = [decode_expand(b) for b in await drain(channel, names.expand)]
    assert again_shards == shards
    for shard in again_shards:
        await expander.expand_shard(shard)
    second = {b.batch_id: b for b in await batches(channel, names)}
    assert first == second
    assert all(bid.startswith(f"{task.alert_id}:") for bid in first)
    counts = await progress.counts(task.alert_id)
    assert counts.audience == 1_800 and counts.shards_done == counts.shards_total == 2
    per_key = Counter((b.provider, b.app) for b in first.values())
    assert set(per_key) == {("apns", "alpha"), ("apns", "beta"), ("fcm", "alpha"), ("fcm", "beta")}


async def test_a_plan_of_one_shard_is_expanded_at_once_and_again_the_same_on_redelivery(
    expander: Expander,
    names: QueueNames,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 900, apps=["alpha"])
    task = await make_alert(pool)
    runs = []
    for _ in range(2):  # the plan, then the plan redelivered
        await expander.plan(task)
        assert await drain(channel, names.expand) == []  # no hop through the expand queue
        runs.append({b.batch_id: b for b in await batches(channel, names)})
    assert runs[0] == runs[1]
    assert sum(len(b.device_ids) for b in runs[0].values()) == 900
    counts = await progress.counts(task.alert_id)
    assert counts.audience == 900 and counts.shards_done == counts.shards_total == 1


async def test_audience_filter_and_empty_audience_finishes_the_alert(
    expander: Expander,
    names: QueueNames,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 500, apps=["alpha"])
    only_beta = await make_alert(pool, AudienceFilter(apps=["beta"]))
    await expand_all(expander, channel, names, only_beta)
    assert await batches(channel, names) == []
    alert = await alerts.get(pool, only_beta.alert_id)
    assert alert is not None and alert.status == "done" and alert.audience == 0
    ios_news = await make_alert(pool, AudienceFilter(platforms=["ios"], tags=["news"]))
    await expand_all(expander, channel, names, ios_news)
    found = await batches(channel, names)
    assert found and all(b.provider == "apns" for b in found)
    expected = await pool.fetchval(
        "SELECT count(*) FROM devices WHERE platform='ios' AND 'news' = ANY(tags)"
    )
    assert sum(len(b.device_ids) for b in found) == expected
