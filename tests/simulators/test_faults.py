"""Unit tests for fault injection: dead tokens, rate limits, quotas, injected errors."""

from __future__ import annotations

from loadtest.simulators.faults import FaultConfig, Faults, MinuteQuota, TokenBucket, is_dead


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


TOKENS = [f"{i:064x}" for i in range(10_000)]


def test_dead_choice_is_a_pure_function_of_seed_and_token() -> None:
    """The same device is dead on every run, whatever order tokens arrive in."""
    first = [t for t in TOKENS if is_dead(7, t, 0.1)]
    again = [t for t in reversed(TOKENS) if is_dead(7, t, 0.1)]
    assert first == list(reversed(again))


def test_dead_fraction_is_respected() -> None:
    dead = sum(is_dead(7, t, 0.1) for t in TOKENS)
    assert 900 < dead < 1100


def test_another_seed_kills_other_devices() -> None:
    assert {t for t in TOKENS if is_dead(1, t, 0.1)} != {t for t in TOKENS if is_dead(2, t, 0.1)}


def test_fraction_bounds() -> None:
    assert not any(is_dead(7, t, 0.0) for t in TOKENS[:100])
    assert all(is_dead(7, t, 1.0) for t in TOKENS[:100])


def test_token_bucket_allows_rate_per_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock)
    assert sum(bucket.allow() for _ in range(15)) == 10
    clock.now += 0.5
    assert sum(bucket.allow() for _ in range(15)) == 5


def test_minute_quota_counts_per_key_and_tells_when_to_retry() -> None:
    clock = FakeClock()
    quota = MinuteQuota(3, clock)
    assert [quota.take("a") for _ in range(3)] == [0, 0, 0]
    assert quota.take("b") == 0
    clock.now += 20
    assert quota.take("a") == 40
    clock.now += 40
    assert quota.take("a") == 0


def test_injected_errors_are_reproducible_by_seed() -> None:
    config = FaultConfig(seed=3, error_fraction=0.3)
    one, two = Faults(config), Faults(config)
    assert [one.injected_error() for _ in range(200)] == [two.injected_error() for _ in range(200)]


def test_injected_error_fraction_and_mix() -> None:
    faults = Faults(FaultConfig(seed=3, error_fraction=0.3))
    statuses = [faults.injected_error() for _ in range(10_000)]
    assert 2700 < sum(s != 0 for s in statuses) < 3300
    assert statuses.count(500) > 1000 and statuses.count(503) > 1000


def test_latency_stays_within_jitter() -> None:
    faults = Faults(FaultConfig(latency_ms=5, latency_jitter_ms=3))
    samples = [faults.latency_s() for _ in range(1000)]
    assert faults.has_latency
    assert 0.002 <= min(samples) and max(samples) <= 0.008
