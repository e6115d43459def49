"""The expander: turns an alert's plan into shards, and each shard into send batches.

A plan message covers the whole device-id range: it is cut into shards of `shard_size` ids,
published with confirms; a range that is one shard is expanded at once, without the hop
through the queue (every alert of a deployment under `shard_size` devices). A shard streams
its active matching devices by keyset, groups them per (provider, app) into batches of at
most `batch_size`, publishes every batch with confirms and is acked only then. Batch ids are
`alert:shard:provider:app:seq`, the same on every re-expansion, and the shard's audience is
counted once (pushfan.progress).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from pushfan import alerts, metrics, outcome_record, registry
from pushfan.cancellation import CancelWatch
from pushfan.messages import ExpandTask, decode_expand, encode
from pushfan.outcomes import Outcome
from pushfan.progress import Counts, Progress, outcome_args
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers import targets
from pushfan.workers.batching import Batcher
from pushfan.workers.runner import Poison

log = logging.getLogger(__name__)


def shard_count(lo: int, hi: int, size: int) -> int:
    """How many shards of `size` ids cover the device ids [lo, hi)."""
    return -(-(hi - lo) // size)


def shard_span(lo: int, hi: int, size: int, n: int) -> tuple[int, int]:
    """The ids [start, end) of shard `n` of [lo, hi); the last one may be shorter."""
    return lo + n * size, min(hi, lo + (n + 1) * size)


class Expander:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        progress: Progress,
        publisher: Publisher,
        cancels: CancelWatch,
        record_pool: asyncpg.Pool | None = None,
    ) -> None:
        self.record_pool = record_pool or pool  # the durable record's (synchronous commits)
        self.cancels = cancels
        self.settings = settings
        self.pool = pool
        self.progress = progress
        self.publisher = publisher
        self.queues = QueueNames.for_prefix(settings.queue_prefix)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            task = decode_expand(message.body)
        except msgspec.DecodeError as exc:
            raise Poison(str(exc)) from exc
        if task.kind == "plan":
            await self.plan(task)
        elif task.kind == "targets":
            await self.settle(task.alert_id, await self.expand_targets(task))
        else:
            await self.expand_shard(task)

    async def plan(self, task: ExpandTask) -> None:
        span = await registry.id_range(self.pool)
        lo, hi = span if span else (0, 0)
        size = self.settings.shard_size
        shards = shard_count(lo, hi, size)
        # The durable record first (pushfan.outcome_record), then Redis: both keep the first.
        lo, hi, shards = await outcome_record.record_plan(
            self.record_pool, task.alert_id, lo, hi, shards
        )
        lo, hi, shards = await self.progress.plan(task.alert_id, lo, hi, shards)
        metrics.PLANNED_SHARDS.inc(shards)
        log.info("alert %s planned: ids [%d, %d) in %d shards", task.alert_id, lo, hi, shards)
        if shards == 1:
            await self.expand_shard(
                msgspec.structs.replace(task, kind="shard", shard=0, lo=lo, hi=hi)
            )
            return
        items = []
        for n in range(shards):
            start, end = shard_span(lo, hi, size, n)
            shard = msgspec.structs.replace(task, kind="shard", shard=n, lo=start, hi=end)
            items.append((encode(shard), f"{task.alert_id}:shard:{n}"))
        await self.publisher.publish_many(self.queues.expand, items)
        if shards == 0:
            await self.settle(task.alert_id, await self.shard_done(task.alert_id, -1, 0))

    async def expand_shard(self, task: ExpandTask) -> None:
        audience = 0
        async with Batcher(self.publisher, self.queues, self.settings.batch_size, task) as batcher:
            async for page in registry.stream_targets(
                self.pool, task.lo, task.hi, task.audience, self.settings.expander_page_size
            ):
                audience += len(page)
                await self.place(batcher, task, page)
        metrics.EXPANDED_TARGETS.inc(audience)
        metrics.EXPANDED_SHARDS.inc()
        counts = await self.shard_done(task.alert_id, task.shard, audience)
        await self.settle(task.alert_id, counts)

    async def shard_done(
        self, alert_id: str, shard: int, audience: int, *, shards_total: int | None = None
    ) -> Counts:
        """Count a shard's audience once: in the durable record, then in Redis."""
        await outcome_record.record_shard(
            self.record_pool, alert_id, shard, audience, shards_total=shards_total
        )
        return await self.progress.shard_done(alert_id, shard, audience, shards_total=shards_total)

    async def expand_targets(self, task: ExpandTask) -> Counts:
        """Publish the send batches of a targeted push; returns the counts after its one
        shard. A targeted push is planned as one shard (0), recorded as it ends, so the
        ledger counts its audience once however often the message is redelivered."""
        assert task.targets is not None, "a 'targets' task carries its targets"
        page_size = self.settings.expander_page_size
        found = await targets.resolve(self.pool, task.targets, page_size, task.audience.apps)
        async with Batcher(self.publisher, self.queues, self.settings.batch_size, task) as batcher:
            for page in targets.pages(found, page_size):
                await self.place(batcher, task, page)
        metrics.EXPANDED_TARGETS.inc(len(found))
        metrics.EXPANDED_SHARDS.inc()
        # The plan (one shard) is recorded with the shard's audience, in one round trip.
        return await self.shard_done(task.alert_id, 0, len(found), shards_total=1)

    async def place(
        self, batcher: Batcher, task: ExpandTask, page: Sequence[registry.Target]
    ) -> None:
        """Batch a page of targets, or, once the alert is cancelled or past its TTL, count
        them so and publish nothing."""
        dropped = self.dropped_as(task)
        if dropped is None:
            await batcher.add(page)
            return
        outcomes = {dropped: [t.id for t in page]}
        sizes, packed = outcome_args(outcomes)
        batch_id = f"{task.alert_id}:{task.shard}:{dropped}"
        await outcome_record.write_outcomes(
            self.record_pool, task.alert_id, batch_id, 0, sizes, packed
        )
        await self.progress.record(task.alert_id, outcomes)

    def dropped_as(self, task: ExpandTask) -> Outcome | None:
        """CANCELLED or EXPIRED once the alert's pushes must no longer go out, else None."""
        if self.cancels.is_cancelled(task.alert_id):
            return Outcome.CANCELLED
        expires_at = task.notification.expires_at
        if expires_at and time.time() >= expires_at:
            return Outcome.EXPIRED
        return None

    async def settle(self, alert_id: str, counts: Counts) -> None:
        """Finish the alert when its last shard is expanded after its last push was sent
        (an audience of nobody, or senders faster than the expander)."""
        if counts.done and await alerts.finish(self.pool, alert_id, counts):
            log.info("alert %s done: %s", alert_id, counts)
