"""The sender's two round trips per batch, and the lease between them, in the real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from pushfan.batch_ledger import BatchLedger
from pushfan.outcomes import Outcome
from pushfan.progress import Progress
from pushfan.provider_rate import Feedback, ProviderRateLimiter, RateKey
from pushfan.settings import Settings

KEY = RateKey("fcm", "alpha")


async def test_begin_holds_the_lease_reads_dedup_and_reserves_only_pending_pushes(
    ledger: BatchLedger, progress: Progress, limiter: ProviderRateLimiter
) -> None:
    await progress.record("a1", {Outcome.DELIVERED: [2]})
    lease = await ledger.begin("a1", "b#0", [1, 2, 3], KEY, take=50, configured=100)
    assert lease is not None
    assert lease.pending == [True, False, True]
    assert lease.reserved == 2 and lease.wait_s == 0 and lease.rate == pytest.approx(100)
    # A second copy of the same delivery waits; its reservation is not taken.
    assert await ledger.begin("a1", "b#0", [1, 2, 3], KEY, take=50, configured=100) is None
    # The two reserved pushes put the limiter 20 ms ahead at 100/s: 8 more wait
    # 20 + 80 - 50 (the burst) = 50 ms, not the 30 ms they would without the reservation.
    wait, _ = await limiter.acquire(KEY, 8, 100)
    assert wait == pytest.approx(0.05, abs=0.005)


async def test_begin_reserves_nothing_when_asked_for_none(ledger: BatchLedger) -> None:
    lease = await ledger.begin("a1", "b#0", [1, 2], KEY, take=0, configured=100)
    assert lease is not None and lease.reserved == 0 and lease.rate is None


async def test_end_records_once_reports_and_releases_the_lease(
    ledger: BatchLedger, progress: Progress
) -> None:
    lease = await ledger.begin("a1", "b#0", [1, 2, 3, 4], KEY, take=4, configured=0)
    assert lease is not None
    outcomes = {
        Outcome.DELIVERED: [1],
        Outcome.INVALID: [2],
        Outcome.EXPIRED: [3],
        Outcome.CANCELLED: [4],
    }
    counts, rate = await ledger.end(lease, outcomes, 1, Feedback(accepted=2))
    assert (counts.delivered, counts.invalid, counts.expired, counts.cancelled) == (1, 1, 1, 1)
    assert counts.retryable == 1 and rate == pytest.approx(1e9) and lease.released
    again, _ = await ledger.end(lease, {Outcome.DELIVERED: [1], Outcome.INVALID: [2]})
    assert again.delivered == 1 and again.invalid == 1  # a device counts once
    assert await progress.pending("a1", [1, 2, 3, 4, 5]) == [False] * 4 + [True]
    # Released: the next delivery of the batch takes the lease at once.
    assert await ledger.begin("a1", "b#0", [5], KEY, take=1, configured=0) is not None


async def test_a_throttled_last_slice_adapts_the_shared_rate(ledger: BatchLedger) -> None:
    lease = await ledger.begin("a1", "b#0", [1], KEY, take=1, configured=1_000)
    assert lease is not None
    _, rate = await ledger.end(lease, {}, 1, Feedback(throttled=5))
    assert rate == pytest.approx(800)


async def test_the_lease_is_renewed_while_held_and_released_on_exit(
    redis: aioredis.Redis, settings: Settings, progress: Progress
) -> None:
    """A body longer than the lease keeps it (renewed every third); leaving the block
    without `end` (nothing pending, or an error) releases it for the next delivery."""
    ledger = BatchLedger.from_settings(
        redis, settings.model_copy(update={"batch_lease_s": 0.3}), progress.epoch
    )
    with pytest.raises(RuntimeError):
        async with ledger.lease("a1", "b#0", [1], KEY, take=0, configured=0) as lease:
            assert lease is not None
            await asyncio.sleep(0.6)
            assert await ledger.begin("a1", "b#0", [1], KEY, take=0, configured=0) is None
            raise RuntimeError("the batch failed")
    async with ledger.lease("a1", "b#0", [1], KEY, take=0, configured=0) as again:
        assert again is not None
        async with ledger.lease("a1", "b#0", [1], KEY, take=0, configured=0) as copy:
            assert copy is None  # another holder: the caller defers
