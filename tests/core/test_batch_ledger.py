"""The sender's two round trips per batch, in the real Redis."""

from __future__ import annotations

import pytest

from pushfan.batch_ledger import BatchLedger
from pushfan.progress import Progress
from pushfan.push_rate import ProviderRateLimiter

KEY = ("fcm", "alpha")


@pytest.fixture
def ledger(progress: Progress, limiter: ProviderRateLimiter) -> BatchLedger:
    return BatchLedger(progress, limiter)


async def test_begin_holds_the_lease_reads_dedup_and_reserves_only_pending_pushes(
    ledger: BatchLedger, progress: Progress, limiter: ProviderRateLimiter
) -> None:
    await progress.record("a1", delivered=[2])
    begun = await ledger.begin("a1", "b#0", 30, [1, 2, 3], KEY, take=50, configured=100)
    assert begun is not None
    assert begun.pending == [True, False, True]
    assert begun.reserved == 2 and begun.wait_s == 0 and begun.rate == pytest.approx(100)
    # A second copy of the same delivery waits; its reservation is not taken.
    assert await ledger.begin("a1", "b#0", 30, [1, 2, 3], KEY, take=50, configured=100) is None
    # The two reserved pushes put the limiter 20 ms ahead at 100/s: 8 more wait
    # 20 + 80 - 50 (the burst) = 50 ms, not the 30 ms they would without the reservation.
    wait, _ = await limiter.acquire(*KEY, 8, 100)
    assert wait == pytest.approx(0.05, abs=0.005)


async def test_begin_reserves_nothing_when_asked_for_none(ledger: BatchLedger) -> None:
    begun = await ledger.begin("a1", "b#0", 30, [1, 2], KEY, take=0, configured=100)
    assert begun is not None and begun.reserved == 0 and begun.rate is None


async def test_end_records_once_reports_and_releases_the_lease(
    ledger: BatchLedger, progress: Progress
) -> None:
    assert await ledger.begin("a1", "b#0", 30, [1, 2, 3, 4], KEY, take=4, configured=0)
    outcomes = [[1], [2], [], [3], [4]]  # delivered, invalid, failed, expired, cancelled
    counts, rate = await ledger.end("a1", "b#0", outcomes, 1, KEY, 2, 0, configured=0)
    assert (counts.delivered, counts.invalid, counts.expired, counts.cancelled) == (1, 1, 1, 1)
    assert counts.retryable == 1 and rate == pytest.approx(1e9)
    again, _ = await ledger.end("a1", "b#0", [[1], [2], [], [], []], 0, KEY, 0, 0, configured=0)
    assert again.delivered == 1 and again.invalid == 1  # a device counts once
    assert await progress.pending("a1", [1, 2, 3, 4, 5]) == [False] * 4 + [True]
    # Released: the next delivery of the batch takes the lease at once.
    assert await ledger.begin("a1", "b#0", 30, [5], KEY, take=1, configured=0) is not None


async def test_a_throttled_last_slice_adapts_the_shared_rate(ledger: BatchLedger) -> None:
    assert await ledger.begin("a1", "b#0", 30, [1], KEY, take=1, configured=1_000)
    _, rate = await ledger.end("a1", "b#0", [[], [], [], [], []], 1, KEY, 0, 5, 1_000)
    assert rate == pytest.approx(800)
