"""A sender's Redis work for one batch in two round trips: `begin` and `end`.

Without it a batch cost five: the lease and dedup read, the rate limiter's reservation, its
feedback, the outcomes, the lease's release; for the one-to-three-push batches of targeted
pushes those round trips were most of the sender's work. The scripts are composed of the Lua
functions of pushfan.progress (leases, dedup bitmap, counters) and pushfan.push_rate (GCRA,
429 feedback), so each rule is written once.

- `begin`: take the lease of this delivery of the batch, read which devices still need a
  push, and reserve up to `take` of those pushes from the (provider, app) rate limit.
- `end`: record the final outcomes and counters, feed back what the provider accepted and
  throttled in the last slice, and release the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pushfan.progress import (
    IDS_LUA,
    PENDING_LUA,
    RECORD_LUA,
    Counts,
    Progress,
    pack_ids,
    sizes_and_ids,
    unpack_flags,
)
from pushfan.push_rate import ACQUIRE_LUA, NOW_LUA, REPORT_LUA, ProviderRateLimiter

# KEYS: lease, final bitmap, rate state. ARGV: lease ms, packed ids, pushes to reserve at
# most, configured rate, burst s, recovery ms. False when the lease is held; else
# {pending flags, pushes reserved, wait ms, rate} (wait and rate empty when none were).
_BEGIN = (
    NOW_LUA
    + IDS_LUA
    + PENDING_LUA
    + ACQUIRE_LUA
    + """
if not redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[1]) then return false end
local flags, open = pending_flags(KEYS[2], unpack_ids(ARGV[2]))
local take = math.min(open, tonumber(ARGV[3]))
if take == 0 then return {flags, 0, '', ''} end
local r = rate_acquire(KEYS[3], take, tonumber(ARGV[4]), tonumber(ARGV[5]) * 1000,
                       tonumber(ARGV[6]))
return {flags, take, tostring(r[1]), tostring(r[2])}
"""
)

# KEYS: final bitmap, counters hash, rate state, rate per-second counts, lease. ARGV: ttl,
# retryable, the five outcome sizes, packed ids, accepted, throttled, configured rate.
# Returns {counters, rate after the feedback or '' when there was none}.
_END = (
    NOW_LUA
    + IDS_LUA
    + RECORD_LUA
    + REPORT_LUA
    + """
local sizes = {}
for k = 1, 5 do sizes[k] = tonumber(ARGV[2 + k]) end
local counts = record_outcomes(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), sizes,
                               unpack_ids(ARGV[8]))
local accepted, throttled = tonumber(ARGV[9]), tonumber(ARGV[10])
local rate = ''
if accepted > 0 or throttled > 0 then
  rate = tostring(rate_report(KEYS[3], KEYS[4], accepted, throttled, tonumber(ARGV[11])))
end
redis.call('DEL', KEYS[5])
return {counts, rate}
"""
)


@dataclass(frozen=True)
class Begun:
    pending: list[bool]  # per device of the batch: still to send
    reserved: int  # pushes reserved from the rate limit (0: none asked or none pending)
    wait_s: float  # how long to wait before sending the reserved pushes
    rate: float | None  # the rate in force, when a reservation was made


class BatchLedger:
    def __init__(self, progress: Progress, limiter: ProviderRateLimiter) -> None:
        self._progress = progress
        self._limiter = limiter
        self._begin = progress.redis.register_script(_BEGIN)
        self._end = progress.redis.register_script(_END)

    async def begin(
        self,
        alert_id: str,
        lease: str,
        lease_s: float,
        device_ids: Sequence[int],
        rate_key: tuple[str, str],
        take: int,
        configured: float,
    ) -> Begun | None:
        """None when another worker holds the lease of this delivery of the batch."""
        provider, app = rate_key
        reply = await self._begin(
            keys=[
                self._progress.lease_key(lease),
                self._progress.final_key(alert_id),
                self._limiter.keys(provider, app)[0],
            ],
            args=[
                int(lease_s * 1000),
                pack_ids(device_ids),
                take,
                self._limiter.ceiling(configured),
                self._limiter.burst_s,
                self._limiter.recovery_ms,
            ],
        )
        if reply is None:
            return None
        flags, reserved, wait_ms, rate = reply
        pending = unpack_flags(flags)
        if not reserved:
            return Begun(pending, 0, 0.0, None)
        return Begun(pending, int(reserved), float(wait_ms) / 1000, float(rate))

    async def end(
        self,
        alert_id: str,
        lease: str,
        outcomes: Sequence[Sequence[int]],
        retryable: int,
        rate_key: tuple[str, str],
        accepted: int,
        throttled: int,
        configured: float,
    ) -> tuple[Counts, float | None]:
        """Record `outcomes` (delivered, invalid, failed, expired, cancelled device ids), feed
        back the last slice's `accepted` and `throttled` pushes, release the lease; returns
        the alert's counters and the rate in force after the feedback (None without one)."""
        provider, app = rate_key
        sizes, ids = sizes_and_ids(outcomes)
        values, rate = await self._end(
            keys=[
                self._progress.final_key(alert_id),
                self._progress.counts_key(alert_id),
                *self._limiter.keys(provider, app),
                self._progress.lease_key(lease),
            ],
            args=[
                self._progress.ttl_s,
                retryable,
                *sizes,
                ids,
                accepted,
                throttled,
                self._limiter.ceiling(configured),
            ],
        )
        return Counts.from_values(values), float(rate) if rate else None
