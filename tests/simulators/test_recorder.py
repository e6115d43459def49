"""Unit tests for the push recorder: distinct devices and duplicates per collapse id."""

from __future__ import annotations

from loadtest.simulators.recorder import NO_COLLAPSE_ID, Recorder


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_distinct_devices_and_duplicates_per_alert() -> None:
    """Given alert A sent to 3 devices, one of them twice, and alert B to one of them."""
    recorder = Recorder()
    for token in ("t1", "t2", "t3", "t2"):
        recorder.accept(token, "A")
    recorder.accept("t1", "B")
    stats = recorder.stats()
    assert stats["accepted"] == 5
    assert stats["distinct_tokens"] == 3
    assert stats["duplicates"] == 1
    assert stats["duplicated_tokens"] == 1
    assert stats["by_collapse_id"] == {
        "A": {"accepted": 4, "distinct": 3, "duplicates": 1, "duplicated_tokens": 1},
        "B": {"accepted": 1, "distinct": 1, "duplicates": 0, "duplicated_tokens": 0},
    }


def test_filter_by_collapse_id() -> None:
    recorder = Recorder()
    recorder.accept("t1", "A")
    recorder.accept("t1", "B")
    recorder.accept("t1", "B")
    stats = recorder.stats("B")
    assert (stats["accepted"], stats["duplicates"], stats["collapse_id"]) == (2, 1, "B")
    assert list(stats["by_collapse_id"]) == ["B"]
    assert recorder.stats("unknown")["accepted"] == 0


def test_pushes_without_collapse_id_are_counted_under_empty_key() -> None:
    recorder = Recorder()
    recorder.accept("t1", None)
    assert recorder.stats()["by_collapse_id"][NO_COLLAPSE_ID]["accepted"] == 1


def test_rejections_timestamps_and_per_second() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    recorder.reject("Unregistered")
    recorder.reject("Unregistered")
    recorder.accept("t1", "A")
    clock.now += 1
    recorder.accept("t2", "A")
    recorder.accept("t3", "A")
    stats = recorder.stats()
    assert stats["rejected"] == {"Unregistered": 2}
    assert stats["first_accepted_at"] == 1_700_000_000.25
    assert stats["last_accepted_at"] == 1_700_000_001.25
    assert stats["per_second"] == [[1_700_000_000, 1], [1_700_000_001, 2]]


def test_reset_forgets_everything() -> None:
    recorder = Recorder()
    recorder.accept("t1", "A")
    recorder.reject("X")
    recorder.reset()
    stats = recorder.stats()
    assert (stats["accepted"], stats["rejected"], stats["by_collapse_id"]) == (0, {}, {})
    assert stats["first_accepted_at"] is None


def test_a_million_pushes_cost_ten_bytes_each() -> None:
    """Memory stays bounded: 10^6 pushes to 10^5 devices, stored as numbers, not strings."""
    recorder = Recorder()
    tokens = [f"{i:064x}" for i in range(100_000)]
    for _ in range(10):
        for token in tokens:
            recorder.accept(token, "A")
    snapshot = recorder.snapshot()
    assert snapshot.tokens.nbytes + snapshot.cids.nbytes == 10 * 1_000_000
    stats = recorder.stats()
    assert stats["distinct_tokens"] == 100_000
    assert stats["duplicates"] == 900_000
