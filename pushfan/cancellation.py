"""Cancelled alerts, as every worker sees them within `cancel_poll_s`.

Cancelling adds the alert to a Redis sorted set (score: when). Each worker keeps a local set
refreshed by a poll of only what was added since its last look, so checking "is this alert
cancelled?" before every push is a set lookup, not a round trip. Polling rather than pub/sub
means a worker that was disconnected catches up by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.asyncio as aioredis

from pushfan.keys import RedisKeys

log = logging.getLogger(__name__)


async def mark_cancelled(redis: aioredis.Redis, prefix: str, alert_id: str, ttl_s: int) -> None:
    key = RedisKeys(prefix).cancelled
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {alert_id: now})
        pipe.zremrangebyscore(key, "-inf", now - ttl_s)  # forget long-finished alerts
        pipe.expire(key, ttl_s)
        await pipe.execute()


class CancelWatch:
    def __init__(self, redis: aioredis.Redis, prefix: str, poll_s: float) -> None:
        self._redis = redis
        self._key = RedisKeys(prefix).cancelled
        self._poll_s = poll_s
        self._cancelled: set[str] = set()
        self._since = 0.0  # newest score seen; the poll is inclusive, the set dedupes
        self._task: asyncio.Task[None] | None = None

    def is_cancelled(self, alert_id: str) -> bool:
        return alert_id in self._cancelled

    async def refresh(self) -> None:
        found: list[Any] = await self._redis.zrangebyscore(
            self._key, self._since, "+inf", withscores=True
        )
        for member, score in found:
            self._cancelled.add(member.decode() if isinstance(member, bytes) else member)
            self._since = max(self._since, float(score))

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # Redis away: keep the last view, try again soon
                log.warning("cancel watch could not poll Redis: %s", type(exc).__name__)
            await asyncio.sleep(self._poll_s)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="cancel-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
