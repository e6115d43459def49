"""A rate limit per (provider, app) shared by every worker: GCRA in Redis
(pushfan/lua/_rate.lua), taken per batch, that adapts down when the provider answers 429 and
recovers after.

- `acquire(n)` reserves n pushes and returns how long to wait before sending them (the
  reservation is made at once, so concurrent workers queue up fairly instead of racing).
- `report(feedback)` feeds back what the provider accepted and throttled (per second, across
  all workers). On a 429 the rate drops to 80% of itself, and to 96% of what the provider
  accepted in a recent second that had 429s when there is one: a throttled provider accepts
  exactly its quota, so that lands just under it. At most one adaptation per 2 s; a quota
  20% under the configured rate is found in one step, a far lower one in two. After
  `recovery_s` without a 429 the rate rises 10% per `recovery_s`, up to the configured limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import redis.asyncio as aioredis

from pushfan import scripts
from pushfan.keys import RedisKeys
from pushfan.settings import Settings

UNLIMITED = 1e9  # "no configured limit" still adapts to 429s, from this ceiling (_rate.lua)


class RateKey(NamedTuple):
    """Whose rate limit: one per (provider, app), shared by every worker."""

    provider: str
    app: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """What the provider did with a slice of pushes: answered without throttling (accepted)
    and answered 429 (throttled)."""

    accepted: int = 0
    throttled: int = 0

    def __bool__(self) -> bool:
        return bool(self.accepted or self.throttled)


NO_FEEDBACK = Feedback()


def ceiling(configured: float) -> float:
    """The rate the scripts work with: a configured 0 (no limit) is UNLIMITED."""
    return configured if configured > 0 else UNLIMITED


class ProviderRateLimiter:
    def __init__(
        self, redis: aioredis.Redis, prefix: str, burst_s: float, recovery_s: float
    ) -> None:
        self._keys = RedisKeys(prefix)
        self._burst_s = burst_s
        self._recovery_ms = recovery_s * 1000
        self._acquire = scripts.register(redis, "rate_acquire")
        self._report = scripts.register(redis, "rate_report")
        self._seed = scripts.register(redis, "rate_seed")

    @classmethod
    def from_settings(cls, redis: aioredis.Redis, settings: Settings) -> ProviderRateLimiter:
        return cls(
            redis,
            settings.redis_prefix,
            settings.rate_limit_burst_s,
            settings.rate_limit_recovery_s,
        )

    async def acquire(self, key: RateKey, n: int, configured: float) -> tuple[float, float]:
        """Reserve n pushes; (seconds to wait before sending them, the rate in force)."""
        wait_ms, rate = await self._acquire(
            keys=[self._keys.rate(*key)],
            args=[n, ceiling(configured), self._burst_s, self._recovery_ms],
        )
        return float(wait_ms) / 1000, float(rate)

    async def report(self, key: RateKey, feedback: Feedback, configured: float) -> float:
        """Tell the limiter what the provider accepted and throttled; returns the rate now."""
        rate = await self._report(
            keys=[self._keys.rate(*key), self._keys.rate_seconds(*key)],
            args=[feedback.accepted, feedback.throttled, ceiling(configured)],
        )
        return float(rate)

    async def seed(self, key: RateKey, rate: float) -> None:
        """After Redis lost the limits: start `key`'s at `rate` unless it is already lower
        (pushfan/lua/rate_seed.lua)."""
        await self._seed(keys=[self._keys.rate(*key)], args=[rate])
