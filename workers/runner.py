"""The consumer loop every worker runs: prefetch, one task per message, ack after the work,
and a graceful drain on SIGTERM.

A message is acked only after its handler returned, i.e. after what it produced is safely
elsewhere. A handler that raises `Poison` gets the message dropped (rejected without
requeue: it can never succeed). One that raises because Redis, PostgreSQL or the ledger is
unreachable (pushfan.outages) keeps its message and runs it again with a growing pause until
the service answers: the worker stops taking messages (its prefetch stays full), reports not
ready, and resumes by itself. Any other exception requeues the message, and the quorum
queue's delivery limit stops it from looping forever.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from pushfan import outages, topology
from pushfan.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]
MAX_FAILURE_BACKOFF_S = 5.0
CLOSE_ALLOWANCE_S = 2.0  # of the drain deadline, kept for cancelling stragglers and closing


class Poison(Exception):
    """The message can never be processed (undecodable): drop it, do not requeue."""


class Runner:
    def __init__(
        self,
        settings: Settings,
        queue: str,
        prefetch: int,
        handler: Handler,
        on_drain: Callable[[], None] | None = None,
    ) -> None:
        self.on_drain = on_drain
        self.settings = settings
        self.queue_name = queue
        self.prefetch = prefetch
        self.handler = handler
        self.stop = asyncio.Event()
        self.ready = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.acked = 0
        self.requeued = 0
        self.failures = 0  # consecutive handler failures
        self.consuming = False
        self.outage: str | None = None  # the service whose outage holds messages
        self.held_attempts = 0

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        while True:
            try:
                await self.handler(message)
                break
            except Poison:
                log.error("dead-lettering undecodable message %s", message.message_id)
                await self._settle(message.reject(requeue=False))
                return
            except asyncio.CancelledError:
                await self._settle(message.nack(requeue=True))
                self.requeued += 1
                raise
            except outages.UNAVAILABLE as exc:
                if self.stop.is_set():  # draining: hand it back rather than wait
                    await self._requeue_later(message)
                    return
                # Redis, PostgreSQL or the ledger is away: keep the message and run it again
                # once the service answers (the handlers are idempotent). Handed back, the
                # broker would redeliver it into the same outage until its delivery limit
                # dropped it; held, it also keeps the prefetch full, so no more come.
                await self._hold(exc)
            except Exception:
                await self._requeue_later(message)
                return
        self._outage_ended()
        self.failures = 0
        await self._settle(message.ack())
        self.acked += 1

    async def _requeue_later(self, message: AbstractIncomingMessage) -> None:
        # Wait a little before handing the message back, growing with consecutive failures,
        # so a failing handler is not a hot loop.
        self.failures += 1
        delay = min(MAX_FAILURE_BACKOFF_S, 0.05 * 2 ** min(self.failures, 10))
        log.exception("message %s failed; requeued in %.2fs", message.message_id, delay)
        await asyncio.sleep(delay)
        await self._settle(message.nack(requeue=True))
        self.requeued += 1

    async def _hold(self, exc: BaseException) -> None:
        if self.outage is None:
            log.warning("holding %s's messages: %s", self.queue_name, outages.reason(exc))
        self.outage = outages.service_of(exc)
        self.ready = False  # out of the Service until the outage ends
        delay = min(MAX_FAILURE_BACKOFF_S, 0.05 * 2 ** min(self.held_attempts, 10))
        self.held_attempts += 1
        await asyncio.sleep(delay)

    def _outage_ended(self) -> None:
        if self.outage is not None:
            log.info("%s is back; %s resumes", self.outage, self.queue_name)
            self.outage = None
            self.held_attempts = 0
            self.ready = self.consuming

    @staticmethod
    async def _settle(call: Awaitable[None]) -> None:
        """Ack/nack, tolerating a channel the broker closed: it redelivers what was unacked."""
        try:
            await call
        except Exception as exc:
            log.warning(
                "could not settle a message (%s); the broker will redeliver it", type(exc).__name__
            )

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
            self.ready = self.consuming = True
            log.info("consuming %s with prefetch %d", self.queue_name, self.prefetch)
            await self.stop.wait()
            # Drain: no new deliveries, finish what started, then close (the broker requeues
            # whatever is still unacked when the channel closes).
            self.ready = self.consuming = False
            started = time.monotonic()
            await queue.cancel(tag)
            if self.on_drain is not None:
                self.on_drain()  # started batches stop sending and hand back the rest
            if self.tasks:
                budget = max(0.5, self.settings.drain_deadline_s - CLOSE_ALLOWANCE_S)
                _, pending = await asyncio.wait(set(self.tasks), timeout=budget)
                for task in pending:
                    task.cancel()  # requeued by _process; dedup covers what already left
                if pending:
                    await asyncio.wait(pending, timeout=CLOSE_ALLOWANCE_S / 2)
            log.info(
                "drained %s in %.1fs: %d acked, %d requeued this run",
                self.queue_name,
                time.monotonic() - started,
                self.acked,
                self.requeued,
            )
        finally:
            await connection.close()
