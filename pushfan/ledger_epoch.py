"""Noticing that Redis lost the ledger, and rebuilding it from the durable record.

Redis holds one hash `<prefix>epoch`: `id`, a random id naming the dataset, and `seq`, bumped
by every batch's `end` script. PostgreSQL holds the id too (table `ledger_epoch`). Every
ledger script starts with `epoch_current()` (pushfan/lua/_epoch.lua): it refuses to touch
anything unless Redis's id is the one the caller knows and its `seq` has not gone below what
the caller saw. So, with no extra round trip:
- Redis restarted empty, or flushed: the hash is gone;
- failover to a replica that was behind, or an AOF that lost its last second: `seq` went
  backwards for a process that saw the lost writes (it rebuilds, which changes the id, so
  every other process notices too);
- another process already rebuilt: the id changed, this process adopts the new one.

`Epoch.recover` then, under a PostgreSQL advisory lock (one rebuilder per deployment; the
others wait and adopt): deletes the Redis hash (every ledger script now refuses, so sending
pauses for every running alert), rebuilds the bitmap, counters, plan, shards and
cancellation of every unfinished alert from pushfan.outcome_record, counts a recovery on
each, and sets a new id in Redis and PostgreSQL. Processes that were refused retry their
call, which is idempotent (first outcome of a device wins).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from pushfan import outcome_record

log = logging.getLogger(__name__)

LOST = "PUSHFAN_EPOCH"  # the error a refused script answers (pushfan/lua/_epoch.lua)


class LedgerLost(Exception):
    """Redis does not hold the ledger this process knows: it is being rebuilt."""


def is_lost(exc: ResponseError) -> bool:
    return str(exc).startswith(LOST)


Script = Callable[..., Awaitable[Any]]
# Writes one alert's rebuilt state into Redis: (alert id, state, cancelled?).
Restore = Callable[[str, outcome_record.Rebuilt, bool], Awaitable[None]]


class Epoch:
    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        key: str,
        restore: Restore,
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._restore = restore
        self.key = key
        self.id = ""  # unknown until the first guarded call is refused and adopts one
        self.seq = 0
        self.recovered = 0  # rebuilds this process made
        # Run after this process moved to a new dataset (rebuilt or adopted): what it cached
        # from the old one (cancellations seen, rates learnt) goes back into Redis.
        self.on_recovered: list[Callable[[], Awaitable[None]]] = []
        self._lock = asyncio.Lock()

    def saw(self, seq: int) -> None:
        """A script's bumped seq: Redis may never go below it without losing writes."""
        if seq > self.seq:
            self.seq = seq

    def guard(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        return [*keys, self.key], [*args, self.id, self.seq]

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a guarded script; when it is refused, recover (or adopt) and run it again."""
        while True:
            known = self.id
            k, a = self.guard(keys, args)
            try:
                return await script(keys=k, args=a)
            except ResponseError as exc:
                if not is_lost(exc):
                    raise
            await self.recover(known)

    async def recover(self, broken: str) -> None:
        """Make Redis hold the ledger again: adopt the id another process set, or rebuild.
        `broken` is the id the refused call carried."""
        async with self._lock:  # one recovery per process at a time
            if self.id != broken:
                return  # another task of this process already recovered or adopted
            await self._recover(broken)
            if broken and self.id != broken:
                for hook in self.on_recovered:
                    await hook()

    async def _recover(self, broken: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || 'ledger'))"
            )
            known = await conn.fetchval("SELECT epoch FROM ledger_epoch")
            current, seq = await self._redis.hmget(self.key, ["id", "seq"])
            current_id = current.decode() if isinstance(current, bytes) else current
            if current_id is not None and current_id == known:
                redis_seq = int(seq or 0)
                stale = current_id == broken and redis_seq < self.seq
                if not stale:
                    self.id, self.seq = current_id, redis_seq
                    return False
            if known is None:
                # A deployment's first start (or its first with this record): whatever Redis
                # holds is all there is; name the dataset.
                new = await self._name(conn)
                log.info("ledger epoch %s started", new)
                return False
            await self._redis.delete(self.key)
            started = time.monotonic()
            count = await self._rebuild_all(conn)
            new = await self._name(conn)
            self.recovered += 1
            log.warning(
                "Redis lost the ledger (epoch %s, %s in Redis); rebuilt %d running alert(s) "
                "from the durable record in %.2fs; new epoch %s",
                known,
                current_id or "none",
                count,
                time.monotonic() - started,
                new,
            )
            return True

    async def _name(self, conn: asyncpg.Connection) -> str:
        new = secrets.token_hex(8)
        await conn.execute(
            """
            INSERT INTO ledger_epoch (epoch) VALUES ($1)
            ON CONFLICT (singleton) DO UPDATE SET epoch = $1, changed_at = now()
            """,
            new,
        )
        # Set before the commit: a waiter that takes the lock next finds them equal.
        await self._redis.hset(self.key, mapping={"id": new, "seq": 0})
        self.id, self.seq = new, 0
        return new

    async def _rebuild_all(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            """
            UPDATE alerts SET recoveries = recoveries + 1, last_recovery_at = now()
            WHERE finished_at IS NULL AND status <> 'scheduled'  -- not fired: nothing in Redis
            RETURNING id, status
            """
        )
        for row in rows:
            await self._rebuild(conn, str(row["id"]), row["status"] == "cancelled")
        return len(rows)

    async def _rebuild(self, conn: asyncpg.Connection, alert_id: str, cancelled: bool) -> None:
        await self._restore(alert_id, await outcome_record.rebuild(conn, alert_id), cancelled)
