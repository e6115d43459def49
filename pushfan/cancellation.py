"""Cancelled alerts, as every worker sees them within `cancel_poll_s`.

Cancelling adds the alert to a Redis sorted set (score: when). Each worker keeps a local set
refreshed by a poll of only what was added since its last look, so checking "is this alert
cancelled?" before every push is a set lookup, not a round trip. Polling rather than pub/sub
means a worker that was disconnected catches up by itself; while Redis cannot be polled the
workers ask PostgreSQL, where the cancel is written first, and after Redis lost the set the
ledger's rebuild (pushfan.ledger_epoch) writes it back from there.

The same poll reads the paused alerts (pushfan.pausing): a small set, read whole each time,
since a resume takes an alert out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from pushfan.keys import RedisKeys

log = logging.getLogger(__name__)

NOTED_S = 2.0  # how long a pause this worker made outlives polls that do not show it yet


async def mark_cancelled(redis: aioredis.Redis, prefix: str, alert_id: str, ttl_s: int) -> None:
    key = RedisKeys(prefix).cancelled
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {alert_id: now})
        pipe.zremrangebyscore(key, "-inf", now - ttl_s)  # forget long-finished alerts
        pipe.expire(key, ttl_s)
        await pipe.execute()


# Cancelled alerts still running, as PostgreSQL has them (pushfan.alerts.cancel writes there
# before Redis hears of it).
_CANCELLED_RUNNING = "SELECT id FROM alerts WHERE status = 'cancelled' AND finished_at IS NULL"
_PAUSED = "SELECT id FROM alerts WHERE status = 'paused' AND finished_at IS NULL"


class CancelWatch:
    """`pool`, when given, is asked instead while Redis cannot be: a cancel issued just
    before Redis went away (or lost it) still stops the alert's pushes within `poll_s`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        poll_s: float,
        pool: asyncpg.Pool | None = None,
    ) -> None:
        self._redis = redis
        self._pool = pool
        keys = RedisKeys(prefix)
        self._key = keys.cancelled
        self._paused_key = keys.paused
        self._paused: set[str] = set()
        self._noted: dict[str, float] = {}  # paused here: kept over a poll that began before
        self._poll_s = poll_s
        self._cancelled: set[str] = set()
        self._since = 0.0  # newest score seen; the poll is inclusive, the set dedupes
        self._task: asyncio.Task[None] | None = None

    def is_cancelled(self, alert_id: str) -> bool:
        return alert_id in self._cancelled

    def is_paused(self, alert_id: str) -> bool:
        return alert_id in self._paused

    def note_paused(self, alert_id: str) -> None:
        """This worker paused the alert itself: stop it now, not at the next poll (and not
        undone by a poll that read Redis before the pause was written there)."""
        self._paused.add(alert_id)
        self._noted[alert_id] = time.monotonic()

    async def refresh(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._key, self._since, "+inf", withscores=True)
            pipe.smembers(self._paused_key)
            found, paused = await pipe.execute()
        self._paused = {_text(member) for member in paused} | self._recently_noted()
        for member, score in found:
            self._cancelled.add(_text(member))
            self._since = max(self._since, float(score))

    def _recently_noted(self) -> set[str]:
        horizon = time.monotonic() - NOTED_S
        self._noted = {a: t for a, t in self._noted.items() if t > horizon}
        return set(self._noted)

    async def _poll(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # Redis away: keep the last view, try again soon
            log.warning("cancel watch could not poll Redis: %s", type(exc).__name__)
            await self._refresh_from_database()

    async def _loop(self) -> None:
        while True:
            await self._poll()
            await asyncio.sleep(self._poll_s)

    async def _refresh_from_database(self) -> None:
        if self._pool is None:
            return
        try:
            rows = await self._pool.fetch(_CANCELLED_RUNNING)
            paused = await self._pool.fetch(_PAUSED)
        except Exception as exc:  # both away: keep the last view
            log.warning("cancel watch could not read PostgreSQL: %s", type(exc).__name__)
            return
        self._cancelled.update(str(row["id"]) for row in rows)
        self._paused = {str(row["id"]) for row in paused} | self._recently_noted()

    async def start(self) -> None:
        await self._poll()
        self._task = asyncio.create_task(self._loop(), name="cancel-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)
