"""The consumer loop through an outage of a service its handler needs: the message is held
and run again, never handed back into the outage, and the worker reports not ready
meanwhile."""

from __future__ import annotations

import asyncio

import redis.exceptions

from pushfan.settings import Settings
from pushfan.workers.runner import Runner


class Delivery:
    """What the runner does with one delivered message: ack, nack or reject."""

    message_id = "m1"

    def __init__(self) -> None:
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack requeue={requeue}")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append(f"reject requeue={requeue}")


async def test_a_message_is_held_through_an_outage_and_acked_after() -> None:
    readiness: list[bool] = []
    attempts = 0

    async def handler(_message: object) -> None:
        nonlocal attempts
        attempts += 1
        readiness.append(runner.ready)
        if attempts <= 3:
            raise redis.exceptions.ConnectionError("Redis is restarting")

    runner = Runner(Settings(), "q", 1, handler)
    runner.ready = runner.consuming = True
    delivery = Delivery()
    await asyncio.wait_for(runner._process(delivery), 10)  # type: ignore[arg-type]
    assert attempts == 4 and delivery.settled == ["ack"]
    assert readiness == [True, False, False, False]  # not ready while held
    assert runner.ready and runner.outage is None and runner.requeued == 0


async def test_a_draining_worker_hands_a_held_message_back() -> None:
    async def handler(_message: object) -> None:
        raise redis.exceptions.ConnectionError("Redis is away")

    runner = Runner(Settings(), "q", 1, handler)
    runner.stop.set()
    delivery = Delivery()
    await asyncio.wait_for(runner._process(delivery), 10)  # type: ignore[arg-type]
    assert delivery.settled == ["nack requeue=True"]
