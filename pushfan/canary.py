"""The canary: an alert with `canary: {devices: N | percent: P, max_failure_ratio: R}` sends
its first N pushes (or P% of its audience, counted once the expansion is done), then pauses
itself (pushfan.pausing) if more than R of them ended invalid, failed or refused for
authentication; otherwise the rest goes out.

The senders share one gate per alert in Redis (`alert:<id>:canary`, pushfan/lua/
canary_admit.lua): a batch of a first attempt takes what room is left in the canary and
sends only that; the rest of the batch waits on the delay ladder, as it is, until the canary
is judged. Each admitted push is counted `attempted` at its first answer (a retried answer
counts then, an auth refusal as bad); the sender whose count fills the canary judges it,
once (HSETNX). Pushes admitted but never answered (a sender killed mid-batch, a drain that
handed them back) would leave the canary short for ever: once it has been full for
`stale_s`, a sender that finds no room judges it on the answers it has.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from pushfan import alerts, pausing, scripts
from pushfan.keys import RedisKeys
from pushfan.messages import Canary

log = logging.getLogger(__name__)

PASS, PAUSE = "pass", "pause"


@dataclass(frozen=True)
class Admission:
    """What the gate let through: `taken` pushes of the batch (None: judged, all may go)."""

    taken: int | None


class CanaryGate:
    def __init__(
        self, redis: aioredis.Redis, pool: asyncpg.Pool, prefix: str, ttl_s: int, stale_s: float
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._prefix = prefix
        self._keys = RedisKeys(prefix)
        self._ttl_s = ttl_s
        self._stale_ms = stale_s * 1000
        self._admit = scripts.register(redis, "canary_admit")
        self._judged: set[str] = set()  # alerts whose canary this worker has seen pass

    async def admit(self, alert_id: str, canary: Canary, want: int) -> Admission:
        if alert_id in self._judged:
            return Admission(None)
        keys = [self._keys.canary(alert_id), self._keys.alert(alert_id)]
        args = [canary.devices, canary.percent, want, self._ttl_s]
        taken, verdict, full_at, _, now = await self._admit(keys=keys, args=args)
        if int(taken) < 0:
            self._judged.add(alert_id)
            return Admission(None)
        stale = bool(full_at) and float(now) - float(full_at) > self._stale_ms
        if not int(taken) and not verdict and stale:
            await self._judge(alert_id, canary)  # the canary's missing answers never came
        return Admission(int(taken))

    async def observe(self, alert_id: str, canary: Canary, attempted: int, bad: int) -> bool:
        """Count admitted pushes' first answers; True if the alert paused now."""
        key = self._keys.canary(alert_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempted", attempted)
            pipe.hincrby(key, "bad", bad)
            pipe.hget(key, "size")
            total, _, size = await pipe.execute()
        if size is None or int(total) < int(size):
            return False
        return await self._judge(alert_id, canary)

    async def _judge(self, alert_id: str, canary: Canary) -> bool:
        key = self._keys.canary(alert_id)
        attempted, bad = (int(v or 0) for v in await self._redis.hmget(key, "attempted", "bad"))
        failing = bad > canary.max_failure_ratio * attempted
        if not await self._redis.hsetnx(key, "verdict", PAUSE if failing else PASS):
            return False  # another sender judged it
        if not failing:
            self._judged.add(alert_id)  # only a pass opens the gate for good
            log.info("alert %s: canary passed (%d of %d bad)", alert_id, bad, attempted)
            return False
        reason = (
            f"the canary failed: {bad} of {attempted} pushes invalid, failed or refused for "
            f"authentication (more than {canary.max_failure_ratio:g})"
        )
        if not await alerts.pause(self._pool, alert_id, reason):
            return False
        await pausing.mark_paused(self._redis, self._prefix, alert_id, self._ttl_s)
        log.warning("alert %s paused: %s", alert_id, reason)
        return True
