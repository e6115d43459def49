"""The scheduler: fires scheduled alerts (`send_at`) from every worker process, with no leader.

A pass (`fire_due`) is one PostgreSQL transaction: it locks the due `scheduled` rows with
FOR UPDATE SKIP LOCKED (so schedulers running at once split them, never share one),
publishes each alert's expansion message with publisher confirms (the trigger's own message
and id, pushfan.trigger.queued_task), then marks them `queued` with `fired_at` and commits.

Exactly once: a scheduler SIGKILLed before its commit releases its locks with its
connection, and the row is still `scheduled`, so the next pass of any scheduler fires it
again; if the first publish had reached the broker, the expander receives the plan twice and
plans the alert once (its ledger; re-expansion makes the same batch ids, dedup skips sent
devices). A cancel waits for the lock, then finds the alert `queued` and cancels it as any
running alert; a cancel first leaves nothing `scheduled` to fire.

When idle, a scheduler sleeps until the next `send_at` or `poll_s`, whichever is sooner, so
an alert fires within `poll_s` of its time even when it was scheduled by another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from pushfan import alerts, metrics, outages
from pushfan.messages import encode
from pushfan.publisher import Publisher
from pushfan.topology import QueueNames
from pushfan.trigger import queued_task

log = logging.getLogger(__name__)

TAKE = 100  # alerts per transaction
ERROR_PAUSE_S = 1.0
STOP_WAIT_S = 2.0


class Scheduler:
    def __init__(
        self, pool: asyncpg.Pool, publisher: Publisher, queues: QueueNames, poll_s: float
    ) -> None:
        self.pool = pool  # synchronous commits: `queued` must not be lost after the publish
        self.publisher = publisher
        self.queues = queues
        self.poll_s = poll_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def fire_due(self) -> list[str]:
        """Fire every alert due now; the ids this call fired."""
        fired: list[str] = []
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                due = await alerts.take_due(conn, TAKE)
                for alert in due:
                    task, message_id = await queued_task(self.pool, alert)
                    await self.publisher.publish(self.queues.expand, encode(task), message_id)
                await alerts.mark_fired(conn, [a.id for a in due])
            for alert in due:
                log.info("scheduled alert %s fired (send_at %s)", alert.id, alert.send_at)
            metrics.ALERTS_FIRED.inc(len(due))
            fired += [a.id for a in due]
            if len(due) < TAKE:
                return fired

    async def run(self) -> None:
        """Fire due alerts until `stop`."""
        while not self._stop.is_set():
            pause = self.poll_s
            try:
                await self.fire_due()
                due_in = await alerts.next_due_in(self.pool)
                if due_in is not None:
                    pause = min(pause, max(0.0, due_in))
            except outages.UNAVAILABLE as exc:
                log.warning("scheduler waits: %s", outages.reason(exc))
                pause = ERROR_PAUSE_S
            except Exception:
                log.exception("scheduler pass failed")
                pause = ERROR_PAUSE_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)

    def start(self) -> None:
        if self.poll_s > 0:
            self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """End the loop; a pass still publishing after STOP_WAIT_S is cancelled (its
        transaction rolls back, its alerts stay `scheduled` for another scheduler)."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, STOP_WAIT_S)
            except TimeoutError:
                log.warning("scheduler pass cancelled at shutdown")
