"""Per-alert progress in Redis: the dedup bitmap, the counters, and the expansion ledger.

The keys are described in pushfan.keys; the scripts are pushfan/lua/{pending,record,plan,
shard_done,counts}.lua. The sender's per-batch work (lease, dedup, outcomes) is
pushfan.batch_ledger. Every script call carries the ledger's epoch (pushfan.ledger_epoch):
when Redis lost the ledger the call waits while running alerts are rebuilt from the durable
record in PostgreSQL (`restore` writes one alert back), then runs.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import redis.asyncio as aioredis

from pushfan import cancellation, scripts
from pushfan.keys import RedisKeys
from pushfan.ledger_epoch import Epoch
from pushfan.outcome_record import Rebuilt
from pushfan.outcomes import FINAL_OUTCOMES, Outcome

# The alert's counters, in the order the scripts return them (pushfan/lua/_counters.lua).
COUNTERS = (
    "audience",
    "delivered",
    "invalid",
    "failed",
    "expired",
    "cancelled",
    "retryable",
    "shards_total",
    "shards_done",
)


def pack_ids(device_ids: Sequence[int]) -> bytes:
    """Device ids as the scripts take them: one binary argument, 4 little-endian bytes each
    (ids are bitmap offsets, below 2^32)."""
    return struct.pack(f"<{len(device_ids)}I", *device_ids)


def unpack_flags(flags: bytes) -> list[bool]:
    """The scripts' pending flags ('1' per device still to send) as booleans."""
    return [flag == 49 for flag in flags]  # ord("1")


def outcome_args(outcomes: Mapping[Outcome, Sequence[int]]) -> tuple[list[int], bytes]:
    """The record scripts' `sizes` (ids per outcome, FINAL_OUTCOMES order) and packed ids."""
    lists = [outcomes.get(o, ()) for o in FINAL_OUTCOMES]
    return [len(ids) for ids in lists], pack_ids([i for ids in lists for i in ids])


@dataclass(frozen=True)
class Counts:
    audience: int = 0
    delivered: int = 0
    invalid: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0
    retryable: int = 0  # transient answers seen (a device may count several times)
    shards_total: int | None = None
    shards_done: int = 0

    @classmethod
    def from_values(cls, values: list[Any]) -> Counts:
        found = dict(zip(COUNTERS, values, strict=True))
        total = found.pop("shards_total")
        return cls(
            shards_total=None if total is None else int(total),
            **{k: int(v or 0) for k, v in found.items()},
        )

    @property
    def finished(self) -> int:
        return self.delivered + self.invalid + self.failed + self.expired + self.cancelled

    @property
    def expanded(self) -> bool:
        return self.shards_total is not None and self.shards_done >= self.shards_total

    @property
    def done(self) -> bool:
        return self.expanded and self.finished >= self.audience

    @property
    def stage(self) -> str:
        """Where a running alert is: queued (no worker has taken it yet), expanding, sending."""
        if self.expanded:
            return "sending"
        if self.shards_total is not None or self.finished:
            return "expanding"
        return "queued"


class Progress:
    def __init__(self, redis: aioredis.Redis, prefix: str, ttl_s: int, pool: asyncpg.Pool) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._ttl = ttl_s
        self.epoch = Epoch(redis, pool, self._keys.epoch, self.restore)
        self._counts = scripts.register(redis, "counts")
        self._record = scripts.register(redis, "record")
        self._pending = scripts.register(redis, "pending")
        self._shard_done = scripts.register(redis, "shard_done")
        self._plan = scripts.register(redis, "plan")

    async def pending(self, alert_id: str, device_ids: list[int]) -> list[bool]:
        """For each device, True when it has no final outcome yet (one round trip)."""
        if not device_ids:
            return []
        flags = await self.epoch.call(
            self._pending, [self._keys.final(alert_id)], [pack_ids(device_ids)]
        )
        return unpack_flags(flags)

    async def mark_published(self, alert_id: str) -> None:
        await self._redis.set(self._keys.published(alert_id), 1, ex=self._ttl)

    async def published(self, alert_id: str) -> bool:
        return bool(await self._redis.exists(self._keys.published(alert_id)))

    async def record(
        self,
        alert_id: str,
        outcomes: Mapping[Outcome, Sequence[int]],
        retryable: int = 0,
    ) -> Counts:
        """Set final outcomes (first one wins) and bump counters for new ones only."""
        sizes, ids = outcome_args(outcomes)
        values = await self.epoch.call(
            self._record,
            [self._keys.final(alert_id), self._keys.alert(alert_id)],
            [self._ttl, retryable, *sizes, ids],
        )
        return Counts.from_values(values)

    async def plan(self, alert_id: str, lo: int, hi: int, shards: int) -> tuple[int, int, int]:
        """Record the alert's shard plan once; returns the plan that was recorded first, so
        a redelivered plan message re-publishes exactly the same shards."""
        values = await self.epoch.call(
            self._plan, [self._keys.alert(alert_id)], [lo, hi, shards, self._ttl]
        )
        return int(values[0]), int(values[1]), int(values[2])

    async def shard_done(
        self, alert_id: str, shard: int, audience: int, *, shards_total: int | None = None
    ) -> Counts:
        """Count a shard's audience once; `shards_total` also records the plan (first wins),
        for an alert planned only as its one shard ends."""
        total: int | str = "" if shards_total is None else shards_total
        values = await self.epoch.call(
            self._shard_done,
            [self._keys.shards(alert_id), self._keys.alert(alert_id)],
            [shard, audience, self._ttl, total],
        )
        return Counts.from_values(values)

    async def counts(self, alert_id: str) -> Counts:
        values = await self.epoch.call(self._counts, [self._keys.alert(alert_id)], [])
        return Counts.from_values(values)

    async def restore(self, alert_id: str, state: Rebuilt, cancelled: bool) -> None:
        """Write an alert's state as the durable record rebuilt it (pushfan.ledger_epoch),
        replacing whatever Redis holds for it."""
        counts: dict[str, int] = dict(state.counts)
        if state.plan is not None:
            counts["plan_lo"], counts["plan_hi"] = state.plan
        final, alert, shards = (
            self._keys.final(alert_id),
            self._keys.alert(alert_id),
            self._keys.shards(alert_id),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(final, alert, shards)
            if state.bitmap:
                pipe.set(final, state.bitmap, ex=self._ttl)
            pipe.hset(alert, mapping=cast(Any, counts))
            pipe.expire(alert, self._ttl)
            if state.shards:
                pipe.hset(shards, mapping={str(k): v for k, v in state.shards.items()})
                pipe.expire(shards, self._ttl)
            if state.plan is not None or state.shards:  # its expansion message was queued
                pipe.set(self._keys.published(alert_id), 1, ex=self._ttl)
            await pipe.execute()
        if cancelled:
            await cancellation.mark_cancelled(self._redis, self._keys.prefix, alert_id, self._ttl)
