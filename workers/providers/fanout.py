"""Fan-out of one batch over a fixed number of lanes, shared by the fast providers.

A batch costs a handful of Tasks whatever its size (not one Task, done-callback and future
per push): a few coroutines, the lanes, each take the next index from a shared iterator and
await one request at a time, so up to `lanes` requests are on the wire. What that saves per
push is in docs/performance.md. The process-wide semaphore still bounds pushes in
flight across the batches a sender holds (prefetch).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pushfan import metrics
from pushfan.provider import Provider
from pushfan.tally import Tally
from pushfan.workers.providers.base import SendResult, StopCheck
from pushfan.workers.providers.transport import Answer, TransportError


def lanes_per_batch(concurrency: int, prefetch: int) -> int:
    """Enough lanes that `prefetch` batches together can fill the concurrency budget."""
    return max(8, -(-concurrency // max(1, prefetch)))


async def fan_out(
    count: int, lanes: int, gate: asyncio.Semaphore, push: Callable[[int], Awaitable[None]]
) -> None:
    """Runs push(0..count-1), at most `lanes` at once and within `gate`. A lane holds one
    slot of the gate while it works through the indices (it has at most one push in flight),
    so the gate is taken per lane, not per push, and still bounds the process's pushes in
    flight."""
    indices = iter(range(count))

    async def lane() -> None:
        async with gate:
            for index in indices:
                await push(index)

    width = min(lanes, count)
    if width == 1:
        await lane()
    elif width > 1:
        await asyncio.gather(*(lane() for _ in range(width)))


async def send_all(
    provider: Provider,
    device_ids: list[int],
    lanes: int,
    gate: asyncio.Semaphore,
    stop: StopCheck,
    request: Callable[[int], Awaitable[Answer]],
    refused: Callable[[SendResult, int, Answer], None],
    result: SendResult,
) -> SendResult:
    """Send push i with `request(i)` for every device of the batch over lanes; 200 is
    delivered, no answer is RETRIED, anything else goes to the provider's `refused`."""
    latency = metrics.PROVIDER_LATENCY.labels(provider)
    tally = Tally(latency)  # the batch's latencies, added to the histogram at the end

    async def push(i: int) -> None:
        device_id = device_ids[i]
        if stop():
            result.stopped.append(device_id)
            return
        started = time.perf_counter()
        try:
            answer = await request(i)
        except TransportError as exc:  # no answer: dropped connection, timeout
            result.retried.append(device_id)
            result.note(type(exc).__name__)
            return
        # Counted for every push that got an answer: the histogram's count is pushes sent.
        tally.add(time.perf_counter() - started)
        if answer.status == 200:
            result.delivered.append(device_id)
        else:
            refused(result, device_id, answer)

    in_flight = metrics.IN_FLIGHT.labels(provider)
    width = min(lanes, len(device_ids))
    in_flight.inc(width)  # per lane, not per push: the gauge counts lanes' requests in flight
    try:
        await fan_out(len(device_ids), lanes, gate, push)
    finally:
        in_flight.dec(width)
        tally.flush(latency)
    return result


def stable_uuid_hex(digest: bytes) -> str:
    """A version-5 UUID string from a SHA-1 digest: the same text as str(uuid.uuid5(...)),
    without building a UUID object (it runs once per push, for apns-id)."""
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
