"""The fast providers' per-batch arithmetic and ids, without a network."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from pushfan.workers.providers.apns_fast import APNS_ID_NAMESPACE, apns_id_prefix
from pushfan.workers.providers.fanout import fan_out, lanes_per_batch, stable_uuid_hex


@pytest.mark.parametrize(
    ("concurrency", "prefetch", "lanes"),
    [(500, 8, 63), (500, 1, 500), (8, 8, 8), (10, 0, 10), (16, 4, 8)],
)
def test_prefetch_batches_together_fill_the_concurrency(
    concurrency: int, prefetch: int, lanes: int
) -> None:
    assert lanes_per_batch(concurrency, prefetch) == lanes


@pytest.mark.parametrize("device_id", [0, 7, 123_456_789])
def test_the_apns_id_is_uuid5_of_alert_and_device(device_id: int) -> None:
    digest = apns_id_prefix("alert-1")
    digest.update(str(device_id).encode())
    expected = uuid.uuid5(APNS_ID_NAMESPACE, f"alert-1:{device_id}")
    assert stable_uuid_hex(digest.digest()) == str(expected)


async def test_lanes_hold_the_gate_so_pushes_in_flight_stay_within_it() -> None:
    """Three batches of 40 pushes over 16 lanes each, under a gate of 20: never more than
    20 pushes in flight at once, and every push runs exactly once."""
    gate = asyncio.Semaphore(20)
    in_flight = peak = 0
    ran: list[tuple[int, int]] = []

    def pusher(batch: int) -> Callable[[int], Awaitable[None]]:
        async def push(i: int) -> None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1
            ran.append((batch, i))

        return push

    await asyncio.gather(*(fan_out(40, 16, gate, pusher(b)) for b in range(3)))
    assert peak <= 20
    assert sorted(ran) == [(b, i) for b in range(3) for i in range(40)]
