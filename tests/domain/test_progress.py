"""Dedup bitmap and counters in the real Redis: every device counted once."""

from __future__ import annotations

from pushfan.outcomes import Outcome
from pushfan.progress import Progress


async def test_pending_is_false_once_a_device_has_an_outcome(progress: Progress) -> None:
    assert await progress.pending("a1", [1, 2, 3]) == [True, True, True]
    await progress.record("a1", {Outcome.DELIVERED: [2], Outcome.INVALID: [3]})
    assert await progress.pending("a1", [1, 2, 3]) == [True, False, False]
    assert await progress.pending("other", [2]) == [True]


async def test_counters_count_each_device_once_under_redelivery(progress: Progress) -> None:
    """Recording the same outcomes twice (a redelivered batch) leaves the counts unchanged."""
    await progress.plan("a1", 1, 100, 1)
    await progress.shard_done("a1", 0, 4)
    await progress.record(
        "a1", {Outcome.DELIVERED: [1, 2], Outcome.INVALID: [3], Outcome.FAILED: [4]}, retryable=1
    )
    counts = await progress.record(
        "a1", {Outcome.DELIVERED: [1, 2], Outcome.INVALID: [3], Outcome.FAILED: [4]}
    )
    assert (counts.delivered, counts.invalid, counts.failed) == (2, 1, 1)
    assert counts.retryable == 1
    assert counts.done and counts.finished == counts.audience == 4


async def test_shard_audience_counted_once_and_plan_first_wins(progress: Progress) -> None:
    assert await progress.plan("a1", 1, 200, 2) == (1, 200, 2)
    assert await progress.plan("a1", 1, 900, 9) == (1, 200, 2)  # redelivered plan: same shards
    await progress.shard_done("a1", 0, 10)
    counts = await progress.shard_done("a1", 0, 10)
    assert counts.audience == 10 and not counts.expanded
    counts = await progress.shard_done("a1", 1, 5)
    assert counts.expanded and counts.audience == 15 and not counts.done


async def test_large_device_ids_fit(progress: Progress) -> None:
    big = 50_000_000
    await progress.record("a1", {Outcome.EXPIRED: [big]})
    assert await progress.pending("a1", [big, big + 1]) == [False, True]
    assert (await progress.counts("a1")).expired == 1
