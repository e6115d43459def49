"""A sender's Redis work for one batch in two round trips, and the batch's lease between them.

- `begin` (pushfan/lua/batch_begin.lua): take the lease of the batch, read which devices
  still need a push, and reserve up to `take` of those pushes from the (provider, app) rate
  limit.
- `end` (pushfan/lua/batch_end.lua): record the final outcomes and counters, feed back what
  the provider accepted and throttled in the last slice, and release the lease.

`lease()` is the lease's whole lifetime: `begin` on entry, renewed every third of its
duration while the body runs (a killed holder stops renewing, so its lease lapses), released
on exit unless `end` already released it along with the outcomes.

Both scripts check the ledger's epoch first (pushfan.ledger_epoch: after a Redis loss they
wait for the rebuild, then run), and are composed of the shared Lua functions (dedup bitmap,
counters, GCRA, 429 feedback) that pushfan.progress and pushfan.provider_rate run alone
(see pushfan.scripts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from pushfan import scripts
from pushfan.keys import RedisKeys
from pushfan.ledger_epoch import Epoch
from pushfan.outcomes import Outcome
from pushfan.progress import Counts, outcome_args, pack_ids, unpack_flags
from pushfan.provider_rate import NO_FEEDBACK, Feedback, RateKey, ceiling
from pushfan.settings import Settings


@dataclass
class Lease:
    """A batch this worker holds, and what `begin` found for it."""

    alert_id: str
    batch_id: str
    rate_key: RateKey
    configured: float  # the configured rate of the batch's (provider, app); 0 = no limit
    pending: list[bool]  # per device of the batch: still to send
    reserved: int  # pushes reserved from the rate limit (0: none asked or none pending)
    wait_s: float  # how long to wait before sending the reserved pushes
    rate: float | None  # the rate in force, when a reservation was made
    released: bool = False


class BatchLedger:
    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        ttl_s: int,
        lease_s: float,
        burst_s: float,
        recovery_s: float,
        epoch: Epoch,
    ) -> None:
        self._redis = redis
        self._epoch = epoch
        self._keys = RedisKeys(prefix)
        self._ttl_s = ttl_s
        self._lease_ms = int(lease_s * 1000)
        self._burst_s = burst_s
        self._recovery_ms = recovery_s * 1000
        self._begin = scripts.register(redis, "batch_begin")
        self._end = scripts.register(redis, "batch_end")

    @property
    def epoch(self) -> Epoch:
        return self._epoch

    @classmethod
    def from_settings(cls, redis: aioredis.Redis, settings: Settings, epoch: Epoch) -> BatchLedger:
        return cls(
            redis,
            settings.redis_prefix,
            settings.progress_ttl_s,
            settings.batch_lease_s,
            settings.rate_limit_burst_s,
            settings.rate_limit_recovery_s,
            epoch,
        )

    @contextlib.asynccontextmanager
    async def lease(
        self,
        alert_id: str,
        batch_id: str,
        device_ids: Sequence[int],
        rate_key: RateKey,
        take: int,
        configured: float,
    ) -> AsyncIterator[Lease | None]:
        """The batch's lease for the body of the `async with`; None when another worker
        holds it."""
        held = await self.begin(alert_id, batch_id, device_ids, rate_key, take, configured)
        if held is None:
            yield None
            return
        keeper = asyncio.create_task(self._keep(held))
        try:
            yield held
        finally:
            keeper.cancel()
            if not held.released:
                await self._redis.delete(self._keys.lease(batch_id))

    async def _keep(self, held: Lease) -> None:
        key = self._keys.lease(held.batch_id)
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            with contextlib.suppress(Exception):  # a Redis blip: the next renewal may land
                await self._redis.pexpire(key, self._lease_ms)

    async def begin(
        self,
        alert_id: str,
        batch_id: str,
        device_ids: Sequence[int],
        rate_key: RateKey,
        take: int,
        configured: float,
    ) -> Lease | None:
        """Take the lease (None when another worker holds it), read what is pending and
        reserve up to `take` pushes of it."""
        reply = await self._epoch.call(
            self._begin,
            [
                self._keys.lease(batch_id),
                self._keys.final(alert_id),
                self._keys.rate(*rate_key),
            ],
            [
                self._lease_ms,
                pack_ids(device_ids),
                take,
                ceiling(configured),
                self._burst_s,
                self._recovery_ms,
            ],
        )
        if reply is None:
            return None
        flags, reserved, wait_ms, rate = reply
        lease = Lease(alert_id, batch_id, rate_key, configured, unpack_flags(flags), 0, 0.0, None)
        if reserved:
            lease.reserved, lease.wait_s, lease.rate = (
                int(reserved),
                float(wait_ms) / 1000,
                float(rate),
            )
        return lease

    async def end(
        self,
        lease: Lease,
        outcomes: Mapping[Outcome, Sequence[int]],
        retryable: int = 0,
        feedback: Feedback = NO_FEEDBACK,
    ) -> tuple[Counts, float | None]:
        """Record the device ids of each final outcome, feed back the last slice's accepted
        and throttled pushes, release the lease; returns the alert's counters and the rate
        in force after the feedback (None without one)."""
        sizes, ids = outcome_args(outcomes)
        values, rate, seq = await self._epoch.call(
            self._end,
            [
                self._keys.final(lease.alert_id),
                self._keys.alert(lease.alert_id),
                self._keys.rate(*lease.rate_key),
                self._keys.rate_seconds(*lease.rate_key),
                self._keys.lease(lease.batch_id),
            ],
            [
                self._ttl_s,
                retryable,
                *sizes,
                ids,
                feedback.accepted,
                feedback.throttled,
                ceiling(lease.configured),
            ],
        )
        lease.released = True
        self._epoch.saw(int(seq))
        return Counts.from_values(values), float(rate) if rate else None
