"""Per-alert progress in Redis: the dedup bitmap, the counters, and the expansion ledger.

Keys (all under the configured prefix, all expiring after `progress_ttl_s`):
- `alert:<id>:final`  bitmap indexed by device id; a bit is set once the device's push has a
  final outcome (delivered, invalid, failed, expired or cancelled). It is both the dedup
  check made before sending (one BITFIELD_RO round trip per batch) and the guard that makes
  every counter count a device once, however often a batch or shard is redelivered. 1 bit
  per device id:
  10^7 devices cost 1.25 MB per alert.
- `alert:<id>`  hash of counters: audience, delivered, invalid, failed, expired,
  cancelled, retryable, shards_total, shards_done, and the plan (lo, hi) the shards were cut from.
- `alert:<id>:shards`  hash shard -> audience of that shard, so a re-expanded shard is
  counted once.
- `alert:<id>:published`  set once the alert's expansion message is confirmed by the broker,
  so a retried trigger republishes only what was never queued.
- `lease:<batch id>#<attempt>`  held while one worker sends that batch (see `claim`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

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
_LUA_COUNTERS = "local COUNTERS = {" + ", ".join(f"'{c}'" for c in COUNTERS) + "}\n"

# KEYS: final bitmap, counters hash. ARGV: ttl, n_retryable, then for each outcome in
# FINAL_OUTCOMES its size, then the device ids in that order. Returns the counters.
_RECORD = (
    _LUA_COUNTERS
    + """
local final, counts = KEYS[1], KEYS[2]
local ttl = tonumber(ARGV[1])
local names = {'delivered', 'invalid', 'failed', 'expired', 'cancelled'}
local sizes = {}
for k = 1, 5 do sizes[k] = tonumber(ARGV[2 + k]) end
local i = 8
for k = 1, 5 do
  local fresh = 0
  for _ = 1, sizes[k] do
    if redis.call('SETBIT', final, ARGV[i], 1) == 0 then fresh = fresh + 1 end
    i = i + 1
  end
  if fresh > 0 then redis.call('HINCRBY', counts, names[k], fresh) end
end
local retryable = tonumber(ARGV[2])
if retryable > 0 then redis.call('HINCRBY', counts, 'retryable', retryable) end
redis.call('EXPIRE', final, ttl)
redis.call('EXPIRE', counts, ttl)
return redis.call('HMGET', counts, unpack(COUNTERS))
"""
)

# KEYS: shards hash, counters hash. ARGV: shard, audience of the shard, ttl, and the plan's
# shard count when this call is also the plan (a targeted push: one shard, planned as it ends).
_SHARD_DONE = (
    _LUA_COUNTERS
    + """
if ARGV[4] then redis.call('HSETNX', KEYS[2], 'shards_total', ARGV[4]) end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'audience', ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'shards_done', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('HMGET', KEYS[2], unpack(COUNTERS))
"""
)

# KEYS: counters hash. ARGV: lo, hi, shards, ttl. The first plan wins.
_PLAN = """
if redis.call('HSETNX', KEYS[1], 'shards_total', ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'plan_lo', ARGV[1], 'plan_hi', ARGV[2])
  redis.call('HSETNX', KEYS[1], 'audience', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('HMGET', KEYS[1], 'plan_lo', 'plan_hi', 'shards_total')
"""


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
    def __init__(self, redis: aioredis.Redis, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_s
        self._record = redis.register_script(_RECORD)
        self._shard_done = redis.register_script(_SHARD_DONE)
        self._plan = redis.register_script(_PLAN)

    def _key(self, alert_id: str, suffix: str = "") -> str:
        return f"{self._prefix}alert:{alert_id}{suffix}"

    async def pending(self, alert_id: str, device_ids: list[int]) -> list[bool]:
        """For each device, True when it has no final outcome yet (one round trip)."""
        if not device_ids:
            return []
        args: list[Any] = []
        for device_id in device_ids:
            args += ("GET", "u1", device_id)
        bits = await self._redis.execute_command(
            "BITFIELD_RO", self._key(alert_id, ":final"), *args
        )
        return [bit == 0 for bit in bits]

    async def claim(
        self, alert_id: str, lease: str, lease_s: float, device_ids: list[int]
    ) -> list[bool] | None:
        """Take the lease on one delivery of a batch and read its pending flags, in one round
        trip. None when another worker holds the lease: two copies of a batch (a redelivery
        after a broker restart while the first is still being sent) must not both send."""
        args: list[Any] = []
        for device_id in device_ids:
            args += ("GET", "u1", device_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{self._prefix}lease:{lease}", 1, nx=True, px=int(lease_s * 1000))
            pipe.execute_command("BITFIELD_RO", self._key(alert_id, ":final"), *args)
            leased, bits = await pipe.execute()
        if not leased:
            return None
        return [bit == 0 for bit in bits]

    async def mark_published(self, alert_id: str) -> None:
        await self._redis.set(self._key(alert_id, ":published"), 1, ex=self._ttl)

    async def published(self, alert_id: str) -> bool:
        return bool(await self._redis.exists(self._key(alert_id, ":published")))

    async def renew(self, lease: str, lease_s: float) -> None:
        await self._redis.pexpire(f"{self._prefix}lease:{lease}", int(lease_s * 1000))

    async def release(self, lease: str) -> None:
        await self._redis.delete(f"{self._prefix}lease:{lease}")

    async def record(
        self,
        alert_id: str,
        *,
        delivered: list[int] = (),  # type: ignore[assignment]
        invalid: list[int] = (),  # type: ignore[assignment]
        failed: list[int] = (),  # type: ignore[assignment]
        expired: list[int] = (),  # type: ignore[assignment]
        cancelled: list[int] = (),  # type: ignore[assignment]
        retryable: int = 0,
    ) -> Counts:
        """Set final outcomes (first one wins) and bump counters for new ones only."""
        values = await self._record(
            keys=[self._key(alert_id, ":final"), self._key(alert_id)],
            args=[
                self._ttl,
                retryable,
                len(delivered),
                len(invalid),
                len(failed),
                len(expired),
                len(cancelled),
                *delivered,
                *invalid,
                *failed,
                *expired,
                *cancelled,
            ],
        )
        return Counts.from_values(values)

    async def plan(self, alert_id: str, lo: int, hi: int, shards: int) -> tuple[int, int, int]:
        """Record the alert's shard plan once; returns the plan that was recorded first, so
        a redelivered plan message re-publishes exactly the same shards."""
        values = await self._plan(keys=[self._key(alert_id)], args=[lo, hi, shards, self._ttl])
        return int(values[0]), int(values[1]), int(values[2])

    async def shard_done(
        self, alert_id: str, shard: int, audience: int, *, shards_total: int | None = None
    ) -> Counts:
        """Count a shard's audience once; `shards_total` also records the plan (first wins),
        for an alert planned only as its one shard ends."""
        args: list[Any] = [shard, audience, self._ttl]
        if shards_total is not None:
            args.append(shards_total)
        values = await self._shard_done(
            keys=[self._key(alert_id, ":shards"), self._key(alert_id)], args=args
        )
        return Counts.from_values(values)

    async def counts(self, alert_id: str) -> Counts:
        values = await self._redis.hmget(self._key(alert_id), list(COUNTERS))
        return Counts.from_values(values)
