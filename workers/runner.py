"""The consumer loop every worker runs: prefetch, one task per message, ack after the work,
and a graceful drain on SIGTERM.

A message is acked only after its handler returned, i.e. after what it produced is safely
elsewhere. A handler that raises `Poison` gets the message dropped (rejected without
requeue: it can never succeed); any other exception requeues it, and the quorum queue's
delivery limit stops it from looping forever.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from pushfan import topology
from pushfan.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Poison(Exception):
    """The message can never be processed (undecodable): drop it, do not requeue."""


class Runner:
    def __init__(self, settings: Settings, queue: str, prefetch: int, handler: Handler) -> None:
        self.settings = settings
        self.queue_name = queue
        self.prefetch = prefetch
        self.handler = handler
        self.stop = asyncio.Event()
        self.ready = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.acked = 0
        self.requeued = 0

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.handler(message)
        except Poison:
            log.error("dropping undecodable message %s", message.message_id)
            await message.reject(requeue=False)
            return
        except asyncio.CancelledError:
            await message.nack(requeue=True)
            self.requeued += 1
            raise
        except Exception:
            log.exception("message %s failed; requeued", message.message_id)
            await message.nack(requeue=True)
            self.requeued += 1
            return
        await message.ack()
        self.acked += 1

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._process(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        connection = await topology.connect(self.settings)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self.prefetch)
            queues = await topology.declare(channel, self.settings)
            queue = queues[self.queue_name]
            tag = await queue.consume(self._on_message)
            self.ready = True
            log.info("consuming %s with prefetch %d", self.queue_name, self.prefetch)
            await self.stop.wait()
            # Drain: no new deliveries, finish what started, then close (the broker requeues
            # whatever is still unacked when the channel closes).
            self.ready = False
            started = time.monotonic()
            await queue.cancel(tag)
            if self.tasks:
                _, pending = await asyncio.wait(
                    set(self.tasks), timeout=self.settings.drain_deadline_s
                )
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=2)
            log.info(
                "drained %s in %.1fs: %d acked, %d requeued this run",
                self.queue_name,
                time.monotonic() - started,
                self.acked,
                self.requeued,
            )
        finally:
            await connection.close()
