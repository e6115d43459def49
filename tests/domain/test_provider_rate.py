"""The provider rate limiter shared by all workers, in the real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from pushfan.provider_rate import Feedback, ProviderRateLimiter, RateKey
from pushfan.settings import Settings

KEY = RateKey("fcm", "alpha")


@pytest.fixture
def limiter(redis: aioredis.Redis, settings: Settings) -> ProviderRateLimiter:
    """Half a second of burst, so the arithmetic below is easy to follow."""
    return ProviderRateLimiter(redis, settings.redis_prefix, 0.5, 60)


async def test_batches_beyond_the_burst_wait_their_turn(limiter: ProviderRateLimiter) -> None:
    """1,000/s with half a second of burst: the first 500 go at once, the next 500 wait ~0.5 s,
    and the reservation is shared, so a second caller queues behind the first."""
    assert await limiter.acquire(KEY, 500, 1_000) == (0, 1_000)
    wait, _ = await limiter.acquire(KEY, 500, 1_000)
    assert 0.45 < wait <= 0.5
    again, _ = await limiter.acquire(KEY, 500, 1_000)
    assert 0.95 < again <= 1.0
    assert (await limiter.acquire(RateKey("fcm", "beta"), 500, 1_000))[0] == 0  # apps are separate


async def test_unlimited_never_waits(limiter: ProviderRateLimiter) -> None:
    for _ in range(20):
        assert (await limiter.acquire(RateKey("apns", "alpha"), 500, 0))[0] == 0


async def _next_second() -> None:
    await asyncio.sleep(1.001 - time.time() % 1)


async def test_a_first_429_backs_off_by_a_fifth(limiter: ProviderRateLimiter) -> None:
    """No throttled second to learn from yet: multiplicative decrease, once per window."""
    await limiter.acquire(KEY, 1, 1_000)
    assert await limiter.report(KEY, Feedback(0, 5), 1_000) == pytest.approx(800)
    assert await limiter.report(KEY, Feedback(0, 5), 1_000) == pytest.approx(800)


async def test_a_throttled_second_reveals_the_quota(limiter: ProviderRateLimiter) -> None:
    """In a second with 429s the provider accepted exactly its quota (300 here): the rate
    lands at 96% of it in one step, from far above, and governs the next reservations."""
    await _next_second()
    first = await limiter.report(KEY, Feedback(accepted=300, throttled=700), 10_000)
    assert first == pytest.approx(8_000)  # nothing to learn from yet
    await asyncio.sleep(2.1)  # the next adaptation window
    rate = await limiter.report(KEY, Feedback(throttled=5), 10_000)
    assert rate == pytest.approx(288)
    # 288/s with 0.5 s of burst: the next 500 wait ~1.24 s.
    wait, rate = await limiter.acquire(KEY, 500, 10_000)
    assert 1.2 < wait < 1.28 and rate == pytest.approx(288)
