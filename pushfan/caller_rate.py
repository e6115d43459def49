"""Per-caller rate limits for the API (per API key, per client address, per sign-in): GCRA
in one Redis script (pushfan/lua/caller_hit.lua). The provider-side limiter, which adapts to
429s, is pushfan.provider_rate."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from pushfan import scripts
from pushfan.keys import RedisKeys


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float


class CallerRateLimiter:
    """`rate_per_s` requests per second per caller, with bursts of up to `burst` requests."""

    def __init__(self, redis: aioredis.Redis, prefix: str, rate_per_s: float, burst: int) -> None:
        self._keys = RedisKeys(prefix)
        self._disabled = rate_per_s <= 0  # Settings: a rate of 0 turns the limit off
        self._interval_ms = 1000 / rate_per_s if rate_per_s > 0 else 0.0
        self._tolerance_ms = self._interval_ms * max(0, burst - 1)
        self._hit = scripts.register(redis, "caller_hit")

    async def hit(self, *callers: str) -> Decision:
        """One request of every caller named, all or none (allowed only if each has room)."""
        if self._disabled:
            return Decision(True, 0.0)
        allowed, wait_ms = await self._hit(
            keys=[self._keys.caller_limit(c) for c in callers],
            args=[self._interval_ms, self._tolerance_ms],
        )
        return Decision(bool(int(allowed)), float(wait_ms) / 1000)
