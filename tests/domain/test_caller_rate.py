"""Per-key rate limits on the REST triggers: GCRA in Redis, 429 with Retry-After."""

from __future__ import annotations

import redis.asyncio as aioredis

from pushfan.caller_rate import CallerRateLimiter
from pushfan.settings import Settings


async def test_gcra_allows_the_burst_then_spaces_requests(
    redis: aioredis.Redis, settings: Settings
) -> None:
    limiter = CallerRateLimiter(redis, settings.redis_prefix, rate_per_s=2, burst=3)
    decisions = [await limiter.hit("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 < decisions[-1].retry_after_s <= 0.5
    assert (await limiter.hit("other key")).allowed  # keys do not share a budget


async def test_a_zero_rate_disables_the_limit(redis: aioredis.Redis, settings: Settings) -> None:
    limiter = CallerRateLimiter(redis, settings.redis_prefix, rate_per_s=0, burst=1)
    assert all([(await limiter.hit("k")).allowed for _ in range(50)])
