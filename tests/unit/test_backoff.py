"""backoff_s: capped exponential backoff with jitter, never under Retry-After."""

from __future__ import annotations

import pytest

from pushfan.settings import Settings
from pushfan.workers.backoff import backoff_s

SETTINGS = Settings(retry_base_s=1.0, retry_cap_s=60.0)


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 1.0), (1, 2.0), (3, 8.0), (5, 32.0)])
def test_the_delay_is_jittered_within_the_upper_half_of_the_ceiling(
    attempt: int, ceiling: float
) -> None:
    delays = [backoff_s(SETTINGS, attempt, None) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered


def test_the_ceiling_stops_at_the_cap() -> None:
    assert all(30.0 <= backoff_s(SETTINGS, 20, None) <= 60.0 for _ in range(50))


def test_retry_after_is_a_floor_but_the_cap_still_holds() -> None:
    assert backoff_s(SETTINGS, 0, 10.0) == 10.0
    assert backoff_s(SETTINGS, 0, 0.1) >= 0.5
    assert backoff_s(SETTINGS, 0, 3_600.0) == 60.0
