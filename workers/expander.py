"""The expander: turns an alert's plan into shards, and each shard into send batches.

A plan message covers the whole device-id range: it is cut into shards of `shard_size` ids,
published with confirms. A shard streams its active matching devices by keyset, groups them
per (provider, app) into batches of at most `batch_size`, publishes every batch with
confirms and is acked only then. Batch ids are `alert:shard:provider:app:seq`, the same on
every re-expansion, and the shard's audience is counted once (pushfan.progress).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from pushfan import alerts, metrics, registry
from pushfan.messages import ExpandTask, SendBatch, decode_expand, encode
from pushfan.progress import Counts, Progress
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from workers.runner import Poison

log = logging.getLogger(__name__)

MAX_UNCONFIRMED = 16  # batches awaiting broker confirms at once, bounding memory


class Expander:
    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, progress: Progress, publisher: Publisher
    ) -> None:
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
        else:
            await self.expand_shard(task)

    async def plan(self, task: ExpandTask) -> None:
        span = await registry.id_range(self.pool)
        lo, hi = span if span else (0, 0)
        size = self.settings.shard_size
        shards = -(-(hi - lo) // size)
        lo, hi, shards = await self.progress.plan(task.alert_id, lo, hi, shards)
        await alerts.advance(self.pool, task.alert_id, "expanding")
        items = []
        for n in range(shards):
            shard = msgspec.structs.replace(
                task, kind="shard", shard=n, lo=lo + n * size, hi=min(hi, lo + (n + 1) * size)
            )
            items.append((encode(shard), f"{task.alert_id}:shard:{n}"))
        await self.publisher.publish_many(self.queues.expand, items)
        log.info("alert %s planned: ids [%d, %d) in %d shards", task.alert_id, lo, hi, shards)
        if shards == 0:
            await self.settle(task.alert_id, await self.progress.shard_done(task.alert_id, -1, 0))

    async def expand_shard(self, task: ExpandTask) -> None:
        size = self.settings.batch_size
        buffers: dict[tuple[str, str], list[registry.Target]] = defaultdict(list)
        sequence: dict[tuple[str, str], int] = defaultdict(int)
        unconfirmed: set[asyncio.Task[None]] = set()
        audience = 0

        async def flush(key: tuple[str, str]) -> None:
            targets = buffers.pop(key)
            provider, app = key
            seq = sequence[key]
            sequence[key] += 1
            batch = SendBatch(
                alert_id=task.alert_id,
                batch_id=f"{task.alert_id}:{task.shard}:{provider}:{app}:{seq}",
                provider=provider,  # type: ignore[arg-type]
                app=app,
                notification=task.notification,
                device_ids=[t.id for t in targets],
                tokens=[t.token for t in targets],
            )
            while len(unconfirmed) >= MAX_UNCONFIRMED:
                done, _ = await asyncio.wait(unconfirmed, return_when=asyncio.FIRST_COMPLETED)
                unconfirmed.difference_update(done)
                for finished in done:
                    finished.result()  # a refused publish fails the shard: it is redelivered
            publish = self.publisher.publish(
                self.queues.send[provider], encode(batch), batch.batch_id
            )
            unconfirmed.add(asyncio.create_task(publish))

        try:
            async for page in registry.stream_targets(
                self.pool, task.lo, task.hi, task.audience, self.settings.expander_page_size
            ):
                audience += len(page)
                for target in page:
                    key = (registry.PLATFORM_PROVIDER[target.platform], target.app)
                    buffer = buffers[key]
                    buffer.append(target)
                    if len(buffer) >= size:
                        await flush(key)
            for key in list(buffers):
                await flush(key)
            if unconfirmed:
                await asyncio.gather(*unconfirmed)
        except BaseException:
            for pending in unconfirmed:
                pending.cancel()
            raise
        metrics.EXPANDED_TARGETS.inc(audience)
        metrics.EXPANDED_SHARDS.inc()
        counts = await self.progress.shard_done(task.alert_id, task.shard, audience)
        await self.settle(task.alert_id, counts)

    async def settle(self, alert_id: str, counts: Counts) -> None:
        """Move the alert on once its expansion (and perhaps its sending) is complete."""
        if counts.done:
            if await alerts.finish(self.pool, alert_id, counts):
                log.info("alert %s done: %s", alert_id, counts)
        elif counts.expanded:
            await alerts.advance(self.pool, alert_id, "sending")
