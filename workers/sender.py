"""The sender: one batch of (device id, token) for one (provider, app) at a time.

For each batch:
1. take the batch's lease, skip devices that already have a final outcome for this alert,
   and reserve the first pushes from the shared rate limit (one Redis round trip,
   pushfan.batch_ledger); a copy of a batch another worker is sending waits;
2. drop what is left as `cancelled` or `expired` if the alert was cancelled or its TTL passed;
3. wait if the rate limit says so, and send over HTTP/2, asking before each push whether the
   alert was cancelled meanwhile (a batch longer than the pacing window goes in slices, each
   reserved and reported on its own);
4. deactivate dead tokens (one statement) and queue them for the app's webhook;
5. record every final outcome and bump the counters, tell the rate limiter what the provider
   accepted and throttled, release the lease (one round trip);
6. republish only the transient failures to the delay ladder (the broker holds the backoff;
   same batch id, attempt + 1), or count them failed after the last attempt; mark the alert
   finished if this was its last batch; the runner then acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from pushfan import alerts, metrics, registry
from pushfan.batch_ledger import BatchLedger, Begun
from pushfan.cancellation import CancelWatch
from pushfan.messages import InvalidTokens, SendBatch, decode_batch, encode
from pushfan.progress import FINAL_OUTCOMES, Counts, Progress
from pushfan.publisher import Publisher
from pushfan.push_rate import ProviderRateLimiter
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.providers.base import Provider, SendResult
from pushfan.workers.runner import Poison

log = logging.getLogger(__name__)

DEFER_MS = 2_500
PACE_WINDOW_S = 0.05
FIRST_SLICE = 50


def backoff_s(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Capped exponential backoff with full jitter, never shorter than Retry-After."""
    ceiling = min(settings.retry_cap_s, settings.retry_base_s * 2**attempt)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.retry_cap_s)


class Sender:
    def __init__(
        self,
        settings: Settings,
        provider_name: str,
        providers: dict[str, Provider],
        pool: asyncpg.Pool,
        progress: Progress,
        publisher: Publisher,
        limiter: ProviderRateLimiter,
        cancels: CancelWatch,
    ) -> None:
        self.settings = settings
        self.provider_name = provider_name
        self.providers = providers
        self.pool = pool
        self.progress = progress
        self.publisher = publisher
        self.limiter = limiter
        self.ledger = BatchLedger(progress, limiter)
        self.cancels = cancels
        self.queues = QueueNames.for_prefix(settings.queue_prefix)
        self.draining = False  # set on SIGTERM: unsent pushes of started batches go back
        self._rates: dict[tuple[str, str], float] = {}  # last rate the limiter reported
        self._pushes = {o: metrics.PUSHES.labels(provider_name, o) for o in metrics.OUTCOMES}
        self._batch_seconds = metrics.BATCH_SECONDS.labels(provider_name)
        self._batches = {r: metrics.BATCHES.labels(provider_name, r) for r in metrics.BATCH_RESULTS}
        self._limit_wait = metrics.RATE_LIMIT_WAIT.labels(provider_name)

    def drain(self) -> None:
        self.draining = True

    async def handle(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            batch = decode_batch(message.body)
        except msgspec.DecodeError as exc:
            raise Poison(str(exc)) from exc
        try:
            await self.process(batch)
        except Exception:
            self._batches["failed"].inc()  # requeued by the runner
            raise
        self._batches["acked"].inc()
        self._batch_seconds.observe(time.perf_counter() - started)

    async def process(self, batch: SendBatch) -> None:
        # One lease per batch, whatever the attempt: a redelivered attempt and its retry
        # (a broker restart can put both in flight) must not send the same devices at once.
        lease = batch.batch_id
        rate_key = (self.provider_name, batch.app)
        configured = self.settings.rate_limit(self.provider_name, batch.app)
        # Reserve the first slice along with the lease, unless nothing will be sent (a
        # cancelled alert's batches must not run up the shared rate limit).
        sendable = batch.app in self.providers and not self._dropped(batch)
        begun = await self.ledger.begin(
            batch.alert_id,
            lease,
            self.settings.batch_lease_s,
            batch.device_ids,
            rate_key,
            self._slice_size(rate_key) if sendable else 0,
            configured,
        )
        if begun is None:
            await self._defer(batch)
            return
        # Renewed while the batch runs, so a slow (rate-limited) batch keeps it; a killed
        # holder stops renewing and its lease lapses within `batch_lease_s`.
        keeper = asyncio.create_task(self._keep_lease(lease))
        ended = False
        try:
            ended = await self._process(batch, begun, lease, configured)
        finally:
            keeper.cancel()
            if not ended:
                await self.progress.release(lease)

    async def _keep_lease(self, lease: str) -> None:
        every = self.settings.batch_lease_s / 3
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # a Redis blip: the next renewal may land
                await self.progress.renew(lease, self.settings.batch_lease_s)

    async def _defer(self, batch: SendBatch) -> None:
        """Another worker is sending this very batch: look again later, when dedup will
        skip what it delivered (or its lease has lapsed, if it died)."""
        rung, expiration_ms = self.queues.delay_for(DEFER_MS)
        await self.publisher.publish_delayed(
            rung,
            self.queues.send[self.provider_name],
            encode(batch),
            f"{batch.batch_id}#{batch.attempt}#deferred",
            expiration_ms,
        )

    async def _process(self, batch: SendBatch, begun: Begun, lease: str, configured: float) -> bool:
        """Send what is pending; True once the outcome is recorded and the lease released
        (False: nothing was pending, the lease is still to be released)."""
        alert_id = batch.alert_id
        pending = begun.pending
        ids = [d for d, p in zip(batch.device_ids, pending, strict=True) if p]
        tokens = [t for t, p in zip(batch.tokens, pending, strict=True) if p]
        if len(ids) < len(batch.device_ids):
            self._pushes["deduplicated"].inc(len(batch.device_ids) - len(ids))
        if not ids:
            return False
        if self._dropped(batch):
            outcome = "cancelled" if self.cancels.is_cancelled(alert_id) else "expired"
            await self._end(batch, lease, {outcome: ids}, configured=configured)
            return True
        provider = self.providers.get(batch.app)
        if provider is None:
            # No credentials for this app here: nothing can send it, count it failed.
            log.error(
                "batch %s: no %s credentials for app %r",
                batch.batch_id,
                self.provider_name,
                batch.app,
            )
            await self._end(batch, lease, {"failed": ids}, configured=configured)
            return True

        result, (accepted, throttled) = await self._send_paced(
            provider, batch, ids, tokens, configured, begun
        )
        if result.invalid:
            await registry.deactivate(self.pool, result.invalid)
            await self._report_invalid(batch, result.invalid)
        # Transient failures of the last attempt count failed; earlier ones are retried, but
        # only after the outcomes are recorded: if the broker is away when the retry is
        # published, the batch comes back and dedup skips everything that already went out.
        exhausted = bool(result.transient) and (
            batch.attempt + 1 > self.settings.retry_max_attempts
        )
        failed = list(result.permanent) + (result.transient if exhausted else [])
        # `stop` fired mid-batch: count the unsent as cancelled or expired, or, when the
        # worker is only draining, hand them back to the work queue for another worker.
        cancelled: list[int] = []
        expired: list[int] = []
        if result.stopped:
            if self.cancels.is_cancelled(alert_id):
                cancelled = result.stopped
            elif self._dropped(batch):
                expired = result.stopped
            else:
                await self._hand_back(batch, result.stopped)
        counts = await self._end(
            batch,
            lease,
            {
                "delivered": result.delivered,
                "invalid": result.invalid,
                "failed": failed,
                "expired": expired,
                "cancelled": cancelled,
            },
            retryable=len(result.transient),
            accepted=accepted,
            throttled=throttled,
            configured=configured,
            finish=False,
        )
        if result.reasons:
            log.info("batch %s attempt %d: %s", batch.batch_id, batch.attempt, result.reasons)
        if result.transient:
            await self._retry_or_give_up(batch, result, exhausted)
        await self._finish(alert_id, counts)
        return True

    async def _end(
        self,
        batch: SendBatch,
        lease: str,
        outcomes: dict[str, list[int]],
        *,
        configured: float,
        retryable: int = 0,
        accepted: int = 0,
        throttled: int = 0,
        finish: bool = True,
    ) -> Counts:
        """Record the batch's final outcomes and the last slice's feedback, release the
        lease; count the pushes and, unless told otherwise, finish the alert if it is done."""
        rate_key = (self.provider_name, batch.app)
        counts, rate = await self.ledger.end(
            batch.alert_id,
            lease,
            [outcomes.get(o, []) for o in FINAL_OUTCOMES],
            retryable,
            rate_key,
            accepted,
            throttled,
            configured,
        )
        if rate is not None:
            self._rates[rate_key] = rate
        for outcome, ids in outcomes.items():
            if ids:
                self._pushes[outcome].inc(len(ids))
        if finish:
            await self._finish(batch.alert_id, counts)
        return counts

    async def _hand_back(self, batch: SendBatch, unsent: list[int]) -> None:
        """Republish the targets this draining worker did not send, same batch id and
        attempt, straight to the work queue (they were never tried: no backoff)."""
        keep = set(unsent)
        subset = msgspec.structs.replace(
            batch,
            device_ids=[d for d in batch.device_ids if d in keep],
            tokens=[t for d, t in zip(batch.device_ids, batch.tokens, strict=True) if d in keep],
        )
        await self.publisher.publish(
            self.queues.send[self.provider_name],
            encode(subset),
            f"{batch.batch_id}#{batch.attempt}#handback",
        )

    def _slice_size(self, rate_key: tuple[str, str]) -> int:
        """Pushes per slice: `PACE_WINDOW_S` of the rate in force; until the limiter has told
        this worker the rate, a small first slice."""
        rate = self._rates.get(rate_key)
        return FIRST_SLICE if rate is None else max(1, int(rate * PACE_WINDOW_S))

    async def _send_paced(
        self,
        provider: Provider,
        batch: SendBatch,
        ids: list[int],
        tokens: list[str],
        configured: float,
        begun: Begun,
    ) -> tuple[SendResult, tuple[int, int]]:
        """Send the pushes as the shared rate limit allows. Normally that is one slice, the
        one `begin` reserved; when the batch is more than `PACE_WINDOW_S` of the rate in
        force (a low or adapted quota), it goes out in slices of that size, each reserved and
        waited for, so the provider sees a steady rate rather than 500-push bursts. Returns
        the result and the last slice's (accepted, throttled), which `end` reports."""

        def stop() -> bool:
            return self.draining or self._dropped(batch)

        key = (self.provider_name, batch.app)
        if begun.rate is not None:
            self._rates[key] = begun.rate
        reserved, wait = begun.reserved, begun.wait_s
        result = SendResult()
        feedback = (0, 0)
        start = 0
        while start < len(ids):
            if reserved:
                end, reserved = start + reserved, 0
            else:
                end = min(len(ids), start + self._slice_size(key))
                wait, self._rates[key] = await self.limiter.acquire(
                    self.provider_name, batch.app, end - start, configured
                )
            self._limit_wait.observe(wait)
            if wait > 0:
                await asyncio.sleep(wait)
            part = await provider.send(batch.notification, ids[start:end], tokens[start:end], stop)
            result.merge(part)
            feedback = (
                len(part.delivered) + len(part.invalid) + len(part.permanent),
                part.throttled,
            )
            # Feedback per slice: a 429 adapts the shared rate before the next slice leaves.
            if end < len(ids) and any(feedback):
                self._rates[key] = await self.limiter.report(
                    self.provider_name, batch.app, *feedback, configured
                )
                feedback = (0, 0)
            start = end
        return result, feedback

    def _dropped(self, batch: SendBatch) -> bool:
        expires_at = batch.notification.expires_at
        expired = bool(expires_at) and time.time() >= expires_at
        return expired or self.cancels.is_cancelled(batch.alert_id)

    async def _retry_or_give_up(
        self, batch: SendBatch, result: SendResult, exhausted: bool
    ) -> None:
        """Republish the transient failures to the delay ladder, or, when they ran out of
        attempts (counted failed), to the dead-letter queue for inspection."""
        retry = set(result.transient)
        ids = [d for d in batch.device_ids if d in retry]
        tokens = [t for d, t in zip(batch.device_ids, batch.tokens, strict=True) if d in retry]
        next_attempt = batch.attempt + 1
        subset = msgspec.structs.replace(batch, device_ids=ids, tokens=tokens, attempt=next_attempt)
        message_id = f"{batch.batch_id}#{next_attempt}"
        if exhausted:
            await self.publisher.publish(self.queues.dead, encode(subset), message_id)
            log.warning(
                "batch %s: %d targets failed after %d attempts",
                batch.batch_id,
                len(ids),
                batch.attempt + 1,
            )
            return
        delay = backoff_s(self.settings, batch.attempt, result.retry_after)
        rung, expiration_ms = self.queues.delay_for(int(delay * 1000))
        await self.publisher.publish_delayed(
            rung, self.queues.send[self.provider_name], encode(subset), message_id, expiration_ms
        )
        self._pushes["retried"].inc(len(ids))

    async def _report_invalid(self, batch: SendBatch, invalid: list[int]) -> None:
        """Queue the dead tokens for the app's webhook, when it has one."""
        config = self.settings.app(batch.app)
        if config is None or not config.invalid_token_webhook:
            return
        dead = set(invalid)
        report = InvalidTokens(
            app=batch.app,
            provider=batch.provider,
            batch_id=batch.batch_id,
            device_ids=[d for d in batch.device_ids if d in dead],
            tokens=[t for d, t in zip(batch.device_ids, batch.tokens, strict=True) if d in dead],
        )
        await self.publisher.publish(
            self.queues.feedback, encode(report), f"{batch.batch_id}#invalid"
        )

    async def _finish(self, alert_id: str, counts: Counts) -> None:
        if counts.done and await alerts.finish(self.pool, alert_id, counts):
            log.info("alert %s finished: %s", alert_id, counts)
