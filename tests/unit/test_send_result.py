"""SendResult: every push under one outcome, and slices merged into one batch's result."""

from __future__ import annotations

from pushfan.outcomes import Outcome
from pushfan.workers.providers.base import SendResult


def test_refusals_are_filed_under_their_outcome() -> None:
    result = SendResult()
    result.refused(1, Outcome.INVALID, 410, "Unregistered")
    result.refused(2, Outcome.RETRIED, 429, "TooManyRequests", retry_after=5.0)
    result.refused(3, Outcome.RETRIED, 503, None, retry_after=2.0)
    result.refused(4, Outcome.FAILED, 400, "BadTopic")
    assert (result.invalid, result.retried, result.failed) == ([1], [2, 3], [4])
    assert result.throttled == 1 and result.retry_after == 5.0
    assert result.reasons == {"Unregistered": 1, "TooManyRequests": 1, "503": 1, "BadTopic": 1}


def test_merge_adds_lists_and_counts_and_keeps_the_longest_retry_after() -> None:
    first = SendResult(delivered=[1], retried=[2], throttled=1, retry_after=3.0)
    first.note("TooManyRequests")
    second = SendResult(delivered=[3], failed=[4], stopped=[5], retry_after=1.0)
    second.note("TooManyRequests")
    first.merge(second)
    assert (first.delivered, first.retried, first.failed, first.stopped) == (
        [1, 3],
        [2],
        [4],
        [5],
    )
    assert first.throttled == 1 and first.retry_after == 3.0
    assert first.reasons == {"TooManyRequests": 2}
