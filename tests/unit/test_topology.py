"""Queue names and the delay ladder (pushfan.topology), without a broker."""

from __future__ import annotations

import pytest

from pushfan.provider import Provider
from pushfan.topology import DELAY_RUNGS_MS, QueueNames

NAMES = QueueNames.for_prefix("p")


@pytest.mark.parametrize(
    ("delay_ms", "rung", "expiration_ms"),
    [
        (0, 250, 1),  # a zero delay still expires (RabbitMQ needs a positive TTL)
        (1, 250, 1),
        (250, 250, 250),
        (251, 1_000, 251),
        (2_500, 2_500, 2_500),
        (899_999, 900_000, 899_999),
        (900_000, 900_000, 900_000),
        (10**9, 900_000, 900_000),  # longer than the ladder: capped at the longest rung
    ],
)
def test_a_delay_waits_in_the_smallest_rung_that_covers_it(
    delay_ms: int, rung: int, expiration_ms: int
) -> None:
    assert NAMES.delay_for(delay_ms) == (f"p.delay.{rung}", expiration_ms)


def test_every_queue_is_named_under_the_prefix_once() -> None:
    assert NAMES.send == {p: f"p.send.{p}" for p in Provider}
    names = NAMES.all()
    # expand, feedback, dead, a send queue per provider, the delay rungs
    assert len(names) == len(set(names)) == 3 + len(Provider) + len(DELAY_RUNGS_MS)
    assert all(name.startswith("p.") for name in names)
