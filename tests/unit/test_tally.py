"""pushfan.tally: a batch's observations added at once read like one observe() each."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from pushfan.tally import Tally

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    found = {}
    for metric in histogram.collect():
        for s in metric.samples:
            if s.name.endswith("_created"):
                continue
            found[s.name, s.labels.get("le", "")] = s.value
    return found


def test_a_flushed_tally_equals_observing_every_value() -> None:
    """Given the same values, including ones exactly on a bucket bound and above the last,
    the buckets, count and sum of a flushed tally equal those of observe() per value."""
    values = [random.Random(7).uniform(0, 12) for _ in range(500)] + [0.005, 0.0, 10, 11.0]
    observed = Histogram("h", "h", ["p"], buckets=BUCKETS, registry=CollectorRegistry())
    tallied = Histogram("h", "h", ["p"], buckets=BUCKETS, registry=CollectorRegistry())
    for v in values:
        observed.labels("apns").observe(v)
    tally = Tally(tallied.labels("apns"))
    for v in values[:200]:
        tally.add(v)
    tally.flush(tallied.labels("apns"))
    for v in values[200:]:
        tally.add(v)
    tally.flush(tallied.labels("apns"))
    tally.flush(tallied.labels("apns"))  # nothing new: adds nothing
    a, b = _samples(observed), _samples(tallied)
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert abs(b[key] - value) < 1e-9, key
