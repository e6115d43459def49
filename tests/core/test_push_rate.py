"""The provider rate limiter shared by all workers, in the real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from pushfan.push_rate import ProviderRateLimiter


async def test_batches_beyond_the_burst_wait_their_turn(limiter: ProviderRateLimiter) -> None:
    """1,000/s with half a second of burst: the first 500 go at once, the next 500 wait ~0.5 s,
    and the reservation is shared, so a second caller queues behind the first."""
    assert await limiter.acquire("fcm", "alpha", 500, 1_000) == 0
    wait = await limiter.acquire("fcm", "alpha", 500, 1_000)
    assert 0.45 < wait <= 0.5
    again = await limiter.acquire("fcm", "alpha", 500, 1_000)
    assert 0.95 < again <= 1.0
    assert await limiter.acquire("fcm", "beta", 500, 1_000) == 0  # apps are separate


async def test_unlimited_never_waits(limiter: ProviderRateLimiter) -> None:
    for _ in range(20):
        assert await limiter.acquire("apns", "alpha", 500, 0) == 0


async def _next_second() -> None:
    await asyncio.sleep(1.001 - time.time() % 1)


async def test_a_429_drops_the_rate_to_just_under_what_the_provider_accepted(
    limiter: ProviderRateLimiter,
) -> None:
    await _next_second()
    await limiter.report("fcm", "alpha", accepted=300, throttled=0, configured=10_000)
    await _next_second()
    rate = await limiter.report("fcm", "alpha", accepted=0, throttled=5, configured=10_000)
    assert rate == pytest.approx(291)
    # More 429s right after do not compound: one adaptation per window.
    assert await limiter.report("fcm", "alpha", accepted=0, throttled=5, configured=10_000) == (
        pytest.approx(291)
    )
    # The new rate governs reservations: 291/s with 0.5 s burst -> 500 waits ~1.22 s.
    wait = await limiter.acquire("fcm", "alpha", 500, 10_000)
    assert 1.18 < wait < 1.26
