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
- `lease:<batch id>`  held while one worker sends that batch, any attempt (taken and
  released by pushfan.batch_ledger).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from pushfan.outcomes import FINAL_OUTCOMES, Outcome

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
_LUA_OUTCOMES = "local OUTCOMES = {" + ", ".join(f"'{o}'" for o in FINAL_OUTCOMES) + "}\n"

# Device ids travel to the scripts as one binary argument, 4 little-endian bytes each: a
# batch's 500 ids as 500 arguments cost the client more than the script does (py-spy put a
# fifth of a sender's time in writing them). Bitmap offsets stop below 2^32 anyway.
IDS_LUA = """
local function unpack_ids(packed)
  local ids = {}
  for k = 1, #packed / 4 do ids[k] = struct.unpack('<I4', packed, 4 * k - 3) end
  return ids
end
"""

# Lua functions, also composed into the sender's per-batch scripts (pushfan.batch_ledger).
# pending_flags(final bitmap, ids) -> '1' per device without a final outcome, else '0'; count
PENDING_LUA = """
local function pending_flags(final, ids)
  local flags, open = {}, 0
  for k, id in ipairs(ids) do
    if redis.call('GETBIT', final, id) == 0 then
      flags[k] = '1'
      open = open + 1
    else
      flags[k] = '0'
    end
  end
  return table.concat(flags), open
end
"""

# record_outcomes(final bitmap, counters hash, ttl, retryable, sizes, ids) -> the counters.
# `sizes` are the counts of ids per outcome in FINAL_OUTCOMES order, `ids` those ids in order;
# the first final outcome of a device wins and only new ones bump the counters.
RECORD_LUA = (
    _LUA_COUNTERS
    + _LUA_OUTCOMES
    + """
local function record_outcomes(final, counts, ttl, retryable, sizes, ids)
  local i = 1
  for k = 1, 5 do
    local fresh = 0
    for _ = 1, sizes[k] do
      if redis.call('SETBIT', final, ids[i], 1) == 0 then fresh = fresh + 1 end
      i = i + 1
    end
    if fresh > 0 then redis.call('HINCRBY', counts, OUTCOMES[k], fresh) end
  end
  if retryable > 0 then redis.call('HINCRBY', counts, 'retryable', retryable) end
  redis.call('EXPIRE', final, ttl)
  redis.call('EXPIRE', counts, ttl)
  return redis.call('HMGET', counts, unpack(COUNTERS))
end
"""
)

# KEYS: final bitmap, counters hash. ARGV: ttl, retryable, the five sizes, the packed ids.
_RECORD = (
    IDS_LUA
    + RECORD_LUA
    + """
local sizes = {}
for k = 1, 5 do sizes[k] = tonumber(ARGV[2 + k]) end
return record_outcomes(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), sizes,
                       unpack_ids(ARGV[8]))
"""
)

# KEYS: final bitmap. ARGV: packed ids.
_PENDING = IDS_LUA + PENDING_LUA + "return (pending_flags(KEYS[1], unpack_ids(ARGV[1])))\n"


def pack_ids(device_ids: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(device_ids)}I", *device_ids)


def unpack_flags(flags: bytes) -> list[bool]:
    """The scripts' pending flags ('1' per device still to send) as booleans."""
    return [flag == 49 for flag in flags]  # ord("1")


def outcome_args(outcomes: Mapping[Outcome, Sequence[int]]) -> tuple[list[int], bytes]:
    """RECORD_LUA's `sizes` (ids per outcome, FINAL_OUTCOMES order) and packed `ids`."""
    lists = [outcomes.get(o, ()) for o in FINAL_OUTCOMES]
    return [len(ids) for ids in lists], pack_ids([i for ids in lists for i in ids])


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
        self._pending = redis.register_script(_PENDING)
        self._shard_done = redis.register_script(_SHARD_DONE)
        self._plan = redis.register_script(_PLAN)

    def _key(self, alert_id: str, suffix: str = "") -> str:
        return f"{self._prefix}alert:{alert_id}{suffix}"

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    def final_key(self, alert_id: str) -> str:
        return self._key(alert_id, ":final")

    def counts_key(self, alert_id: str) -> str:
        return self._key(alert_id)

    def lease_key(self, lease: str) -> str:
        return f"{self._prefix}lease:{lease}"

    @property
    def ttl_s(self) -> int:
        return self._ttl

    async def pending(self, alert_id: str, device_ids: list[int]) -> list[bool]:
        """For each device, True when it has no final outcome yet (one round trip)."""
        if not device_ids:
            return []
        flags = await self._pending(keys=[self.final_key(alert_id)], args=[pack_ids(device_ids)])
        return unpack_flags(flags)

    async def mark_published(self, alert_id: str) -> None:
        await self._redis.set(self._key(alert_id, ":published"), 1, ex=self._ttl)

    async def published(self, alert_id: str) -> bool:
        return bool(await self._redis.exists(self._key(alert_id, ":published")))

    async def renew(self, lease: str, lease_s: float) -> None:
        await self._redis.pexpire(self.lease_key(lease), int(lease_s * 1000))

    async def release(self, lease: str) -> None:
        await self._redis.delete(self.lease_key(lease))

    async def record(
        self, alert_id: str, outcomes: Mapping[Outcome, Sequence[int]], retryable: int = 0
    ) -> Counts:
        """Set final outcomes (first one wins) and bump counters for new ones only."""
        sizes, ids = outcome_args(outcomes)
        values = await self._record(
            keys=[self.final_key(alert_id), self.counts_key(alert_id)],
            args=[self._ttl, retryable, *sizes, ids],
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
