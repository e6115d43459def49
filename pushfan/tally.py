"""Histogram observations counted locally and added to the Prometheus histogram at once.

A sender observes one provider latency per push; `Histogram.observe` takes a lock twice and
walks the buckets in Python for each. A `Tally` places an observation in its bucket with a
bisection into plain integers, and `flush` adds the counts and the sum to the histogram
child in one step per non-empty bucket. The histogram then reads exactly as if every value
had been observed (same buckets, count and sum); it only sees them when `flush` runs (once
per batch).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any


class Tally:
    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, child: Any) -> None:
        """`child`: a labelled prometheus_client Histogram (`HISTOGRAM.labels(...)`)."""
        self._bounds: list[float] = list(child._upper_bounds)  # ends with +Inf
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def add(self, value: float) -> None:
        """The bucket Histogram.observe would pick: the first bound >= value."""
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def flush(self, child: Any) -> None:
        """Add what was counted since the last flush to `child`, and start again."""
        if not any(self._counts):
            return
        child._sum.inc(self._sum)
        for i, count in enumerate(self._counts):
            if count:
                child._buckets[i].inc(count)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
