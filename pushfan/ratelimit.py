"""Per-caller rate limits for the API (per API key, per sign-in name): GCRA in one Redis
script. The provider-side limiter, which adapts to 429s, is pushfan.push_rate."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS: the caller's key. ARGV: emission interval ms, burst tolerance ms.
# Returns {allowed 0/1, retry-after ms}.
_HIT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local new_tat = tat + interval
if new_tat - now > tolerance + interval then
  return {0, tostring(new_tat - now - tolerance - interval)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, '0'}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float


class RateLimiter:
    """`rate_per_s` requests per second per caller, with bursts of up to `burst` requests."""

    def __init__(self, redis: aioredis.Redis, prefix: str, rate_per_s: float, burst: int) -> None:
        self._prefix = f"{prefix}limit:"
        self._disabled = rate_per_s <= 0  # Settings: a rate of 0 turns the limit off
        self._interval_ms = 1000 / rate_per_s if rate_per_s > 0 else 0.0
        self._tolerance_ms = self._interval_ms * max(0, burst - 1)
        self._hit = redis.register_script(_HIT)

    async def hit(self, caller: str) -> Decision:
        if self._disabled:
            return Decision(True, 0.0)
        allowed, wait_ms = await self._hit(
            keys=[self._prefix + caller], args=[self._interval_ms, self._tolerance_ms]
        )
        return Decision(bool(int(allowed)), float(wait_ms) / 1000)
