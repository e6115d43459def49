"""Paused alerts: an alert the provider refuses for authentication stops itself.

A paused alert is `paused` in PostgreSQL (written first) and a member of the Redis set
`paused`, which every worker polls with the cancellations (pushfan.cancellation.CancelWatch).
A sender that takes a batch of a paused alert sends nothing of it: the batch goes back to the
delay ladder as it is (no lease, no outcome) and comes round again until the alert is resumed
(`POST /v1/alerts/{id}/resume`) or cancelled; a batch mid-send when the pause arrives hands
its unsent pushes back the same way. Nothing is counted meanwhile, so once resumed the counts
add up as for any alert.

The rule (`AuthRule`): the senders count each alert's attempted pushes and those the
provider refused for authentication (pushfan.workers.providers.errors.AUTH_REFUSALS) until
`auth_pause_after` were attempted; if every one of them was refused the alert pauses itself.
The alert is judged once: after that (and after a resume) it is not counted again.
"""

from __future__ import annotations

import logging

import asyncpg
import redis.asyncio as aioredis

from pushfan import alerts
from pushfan.keys import RedisKeys

log = logging.getLogger(__name__)

AUTH_REFUSED = "the provider refused authentication"


async def mark_paused(redis: aioredis.Redis, prefix: str, alert_id: str, ttl_s: int) -> None:
    key = RedisKeys(prefix).paused
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(key, alert_id)
        pipe.expire(key, ttl_s)
        await pipe.execute()


async def mark_resumed(redis: aioredis.Redis, prefix: str, alert_id: str, ttl_s: int) -> None:
    """Take the alert out of the paused set; it is not judged again (by the auth rule, or by
    its canary, whose verdict becomes 'pass')."""
    keys = RedisKeys(prefix)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.srem(keys.paused, alert_id)
        pipe.hset(keys.auth_watch(alert_id), "judged", 1)
        pipe.expire(keys.auth_watch(alert_id), ttl_s)
        pipe.hset(keys.canary(alert_id), "verdict", "pass")
        pipe.expire(keys.canary(alert_id), ttl_s)
        await pipe.execute()


class AuthRule:
    """Pauses an alert whose first `after` pushes were all refused for authentication.
    `on_paused` is told at once (the sender's own watch), so the worker that paused the alert
    stops it before its next poll."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        prefix: str,
        after: int,
        ttl_s: int,
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._prefix = prefix
        self._keys = RedisKeys(prefix)
        self._after = after
        self._ttl_s = ttl_s
        self._judged: set[str] = set()  # alerts this worker knows need no more counting

    async def observe(self, alert_id: str, attempted: int, refused: int) -> bool:
        """Count one batch's attempted and auth-refused pushes; True if the alert paused now.
        Best effort: a store that is away skips the count (the batch is already recorded)."""
        if self._after <= 0 or attempted <= 0 or alert_id in self._judged:
            return False
        try:
            return await self._observe(alert_id, attempted, refused)
        except (aioredis.RedisError, OSError, asyncpg.PostgresError) as exc:
            log.warning("alert %s: auth rule skipped a count: %s", alert_id, type(exc).__name__)
            return False

    async def _observe(self, alert_id: str, attempted: int, refused: int) -> bool:
        key = self._keys.auth_watch(alert_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempted", attempted)
            pipe.hincrby(key, "refused", refused)
            pipe.hget(key, "judged")
            pipe.expire(key, self._ttl_s)
            total, total_refused, judged, _ = await pipe.execute()
        if judged is not None:
            self._judged.add(alert_id)
            return False
        if int(total) < self._after:
            return False
        if not await self._redis.hsetnx(key, "judged", 1):
            self._judged.add(alert_id)
            return False  # another sender judged it
        self._judged.add(alert_id)
        if int(total_refused) < int(total):
            return False
        if not await alerts.pause(self._pool, alert_id, AUTH_REFUSED):
            return False
        await mark_paused(self._redis, self._prefix, alert_id, self._ttl_s)
        log.warning(
            "alert %s paused: its first %d pushes were all refused for authentication",
            alert_id,
            int(total),
        )
        return True
