"""The durable record of outcomes, and the rebuild of Redis from it after a loss, against the
real PostgreSQL and Redis (each test with its own schema and key prefix)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from pushfan import alerts, db, outcome_record, scripts
from pushfan.alerts import AlertIn
from pushfan.batch_ledger import BatchLedger
from pushfan.cancellation import CancelWatch
from pushfan.ledger_epoch import Epoch
from pushfan.messages import AudienceFilter, Notification, SendBatch
from pushfan.progress import Progress, pack_ids
from pushfan.provider import Provider
from pushfan.provider_rate import ProviderRateLimiter, RateKey
from pushfan.publisher import Publisher
from pushfan.seed import seed_devices
from pushfan.settings import Settings
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.sender import Sender

ALERT = AlertIn("t", "b", {}, AudienceFilter(), 3600, "high")
# A guarded write, as every ledger script is: the seq it made, so the caller can remember it.
BUMP = (
    scripts.source("_epoch")
    + "if not epoch_current() then return redis.error_reply('PUSHFAN_EPOCH') end\n"
    + "return epoch_bump()\n"
)


def _process(redis: aioredis.Redis, pool: db.Pool, settings: Settings) -> Epoch:
    """The epoch as one more worker process sees it."""
    return Progress(redis, settings.redis_prefix, settings.progress_ttl_s, pool).epoch


async def _alert(pool: db.Pool) -> str:
    alert, _ = await alerts.create(pool, ALERT, None, "test")
    return alert.id


async def _record(pool: db.Pool, alert_id: str, batch: str, outcomes: list[list[int]]) -> None:
    ids = [i for group in outcomes for i in group]
    await outcome_record.write_outcomes(
        pool, alert_id, batch, 0, [len(g) for g in outcomes], pack_ids(ids), retryable=1
    )


async def test_rebuild_counts_each_device_once_first_outcome_winning(pool: db.Pool) -> None:
    alert_id = await _alert(pool)
    await outcome_record.record_plan(pool, alert_id, 0, 100, 2)
    assert await outcome_record.record_plan(pool, alert_id, 5, 50, 9) == (0, 100, 2)
    await outcome_record.record_shard(pool, alert_id, 0, 6)
    await outcome_record.record_shard(pool, alert_id, 0, 6)  # a redelivered shard counts once
    await _record(pool, alert_id, "b1", [[1, 9], [2], [], [3], []])
    await _record(pool, alert_id, "b2", [[4, 9], [], [5], [], []])  # 9 again: a re-sent push
    state = await outcome_record.rebuild(pool, alert_id)
    assert state.counts == {
        "delivered": 3,
        "invalid": 1,
        "failed": 1,
        "expired": 1,
        "cancelled": 0,
        "retryable": 2,
        "shards_total": 2,
        "audience": 6,
        "shards_done": 1,
    }
    assert state.plan == (0, 100) and state.resent == 1
    bits = int.from_bytes(state.bitmap, "big")
    width = len(state.bitmap) * 8
    assert {n for n in range(width) if bits >> (width - 1 - n) & 1} == {1, 2, 3, 4, 5, 9}


async def test_a_flushed_redis_is_rebuilt_before_the_next_write(
    pool: db.Pool, redis: aioredis.Redis, progress: Progress, settings: Settings
) -> None:
    """Given an alert with recorded outcomes and a running epoch, when Redis loses the
    ledger, then the next guarded call rebuilds the bitmap and counters and counts a recovery."""
    alert_id = await _alert(pool)
    await outcome_record.record_shard(pool, alert_id, 0, 4, shards_total=1)
    await _record(pool, alert_id, "b1", [[1, 2], [3], [], [], []])
    epoch = progress.epoch
    script = redis.register_script(BUMP)
    assert await epoch.call(script, [], []) == 1  # first start: names the dataset
    first = epoch.id
    async for key in redis.scan_iter(f"{settings.redis_prefix}*"):
        await redis.delete(key)  # what a restart without persistence does
    assert await epoch.call(script, [], []) == 1
    assert epoch.id != first and epoch.recovered == 1
    counts = await progress.counts(alert_id)
    assert (counts.delivered, counts.invalid, counts.audience, counts.shards_total) == (2, 1, 4, 1)
    assert await progress.pending(alert_id, [1, 2, 3, 4]) == [False, False, False, True]
    assert await progress.published(alert_id)
    alert = await alerts.get(pool, alert_id)
    assert alert is not None and alert.recoveries == 1


async def test_a_scheduled_alert_that_has_not_fired_is_not_rebuilt(
    pool: db.Pool, redis: aioredis.Redis, progress: Progress, settings: Settings
) -> None:
    """Redis lost the ledger while an alert waits for its send_at: it had nothing in Redis,
    so it gets no recovery (running ones do)."""
    running = await _alert(pool)
    later = AlertIn(**{**ALERT.__dict__, "send_at": datetime.now(UTC) + timedelta(hours=1)})
    waiting, _ = await alerts.create(pool, later, None, "test")
    epoch = progress.epoch
    script = redis.register_script(BUMP)
    await epoch.call(script, [], [])
    async for key in redis.scan_iter(f"{settings.redis_prefix}*"):
        await redis.delete(key)
    await epoch.call(script, [], [])
    assert epoch.recovered == 1
    recoveries = "SELECT recoveries FROM alerts WHERE id = $1::uuid"
    assert await pool.fetchval(recoveries, running) == 1
    assert await pool.fetchval(recoveries, waiting.id) == 0


async def test_a_replica_that_was_behind_is_noticed_by_who_saw_the_lost_writes(
    pool: db.Pool, redis: aioredis.Redis, settings: Settings
) -> None:
    """The epoch id survives a failover to a stale replica; its seq does not."""
    alert_id = await _alert(pool)
    epoch, other = _process(redis, pool, settings), _process(redis, pool, settings)
    script = redis.register_script(BUMP)
    for _ in range(3):
        epoch.saw(await epoch.call(script, [], []))
    await redis.hset(epoch.key, "seq", 1)  # the replica missed the last two writes
    assert await other.call(script, [], []) == 2  # who never saw them cannot tell
    epoch.saw(await epoch.call(script, [], []))
    assert epoch.recovered == 1  # who did, rebuilt: a new id, which the others adopt
    assert await other.call(script, [], []) == 2 and other.id == epoch.id
    alert = await alerts.get(pool, alert_id)
    assert alert is not None and alert.recoveries == 1


async def test_two_processes_refused_together_rebuild_once(
    pool: db.Pool, redis: aioredis.Redis, settings: Settings
) -> None:
    alert_id = await _alert(pool)
    epochs = [_process(redis, pool, settings) for _ in range(3)]
    script = redis.register_script(BUMP)
    for epoch in epochs:
        await epoch.call(script, [], [])
    await redis.delete(epochs[0].key)
    await asyncio.gather(*(epoch.call(script, [], []) for epoch in epochs))
    assert sum(epoch.recovered for epoch in epochs) == 1
    assert len({epoch.id for epoch in epochs}) == 1
    alert = await alerts.get(pool, alert_id)
    assert alert is not None and alert.recoveries == 1


class LosingProvider:
    """Delivers everything; Redis loses the ledger (every key of the prefix deleted, as a
    restart without persistence does) while the first push of the first batch is on the wire."""

    name = Provider.APNS

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self.sent: list[int] = []

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        if not self.sent:
            async for key in self.redis.scan_iter(f"{self.prefix}*"):
                await self.redis.delete(key)
        self.sent += device_ids
        return SendResult(delivered=list(device_ids))

    async def close(self) -> None:
        return None


async def test_a_batch_on_the_wire_when_redis_loses_the_ledger_is_recorded_not_resent(
    pool: db.Pool,
    redis: aioredis.Redis,
    progress: Progress,
    publisher: Publisher,
    limiter: ProviderRateLimiter,
    cancels: CancelWatch,
    settings: Settings,
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, 10, ios_fraction=1.0, apps=["alpha"])
    alert_id = await _alert(pool)
    await outcome_record.record_plan(pool, alert_id, 1, 11, 1)
    await outcome_record.record_shard(pool, alert_id, 0, 10)
    await progress.plan(alert_id, 1, 11, 1)
    await progress.shard_done(alert_id, 0, 10)
    alert = await alerts.get(pool, alert_id)
    assert alert is not None
    provider = LosingProvider(redis, settings.redis_prefix)
    sender = Sender(
        settings,
        Provider.APNS,
        {"alpha": provider},
        pool,
        BatchLedger.from_settings(redis, settings, progress.epoch),
        limiter,
        publisher,
        cancels,
    )
    ids = list(range(1, 11))
    batch = SendBatch(
        alert_id, f"{alert_id}:0:apns:alpha:0", Provider.APNS, "alpha", alert.notification(), ids,
        [f"{i:064x}" for i in ids],
    )  # fmt: skip
    await sender.process(batch)
    await sender.process(batch)  # redelivered after the loss
    assert sorted(provider.sent) == ids  # each once
    counts = await progress.counts(alert_id)
    assert (counts.audience, counts.delivered, counts.shards_total) == (10, 10, 1)
    finished = await alerts.get(pool, alert_id)
    assert finished is not None and finished.status == "done"
    assert (finished.recoveries, finished.resent) == (1, 0)


async def test_a_lost_rate_limit_restarts_from_the_last_known_rate(
    limiter: ProviderRateLimiter,
) -> None:
    """Given the shared limit's state is gone, a worker's last known rate (800/s) becomes
    the limit, not the configured 1,000/s, and a higher seed from another worker is ignored."""
    key = RateKey("fcm", "alpha")
    await limiter.seed(key, 800)
    await limiter.seed(key, 950)
    _, rate = await limiter.acquire(key, 1, 1_000)
    assert rate == 800
