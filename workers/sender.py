"""The sender: one batch of (device id, token) for one (provider, app) at a time.

For each batch (`process`, top to bottom):
1. hold the batch's lease for the whole batch (`BatchLedger.lease`): taking it also skips
   devices that already have a final outcome for this alert and reserves the first pushes
   from the shared rate limit, in one Redis round trip; a copy of a batch another worker is
   sending waits in the delay ladder (`_defer`);
2. drop what is pending as CANCELLED or EXPIRED if the alert was cancelled or its TTL passed,
   or as FAILED when this worker has no credentials for the app;
3. send over HTTP/2 as the rate limit allows (`_send_paced`), asking before each push whether
   the alert was cancelled meanwhile; a batch longer than the pacing window goes in slices,
   each reserved and reported on its own;
4. deactivate dead tokens (one statement) and queue them for the app's webhook;
5. record every final outcome in the durable record (one INSERT, pushfan.outcome_record),
   then in Redis: bump the counters, tell the rate limiter what the provider accepted and
   throttled, release the lease (one round trip, `BatchLedger.end`); either store being
   away is waited out there, since failing the batch would send its pushes again;
6. republish only the RETRIED pushes to the delay ladder (the broker holds the backoff; same
   batch id, attempt + 1), or count them FAILED after the last attempt; mark the alert
   finished if this was its last batch; the runner then acks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from pushfan import alerts, metrics, outages, outcome_record, registry, webpush
from pushfan.batch_ledger import BatchLedger, Lease
from pushfan.canary import CanaryGate
from pushfan.cancellation import CancelWatch
from pushfan.messages import InvalidTokens, SendBatch, decode_batch, encode
from pushfan.outcome_reasons import reason_args
from pushfan.outcomes import Outcome
from pushfan.pausing import AuthRule
from pushfan.progress import Counts, outcome_args
from pushfan.provider import Provider
from pushfan.provider_rate import NO_FEEDBACK, Feedback, ProviderRateLimiter, RateKey
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.backoff import backoff_s
from pushfan.workers.providers.base import ProviderClient, SendResult
from pushfan.workers.providers.errors import auth_refusals, bad_answers
from pushfan.workers.runner import Poison

log = logging.getLogger(__name__)

DEFER_MS = 2_500
PACE_WINDOW_S = 0.05
FIRST_SLICE = 50
NO_CREDENTIALS = "no credentials"  # why a push failed unsent: no credentials for its app


@dataclass
class Pending:
    """The pushes of a held batch that still need sending, and how to pace them."""

    batch: SendBatch
    lease: Lease
    ids: list[int]
    tokens: list[str]

    @property
    def rate_key(self) -> RateKey:
        return self.lease.rate_key

    @property
    def configured(self) -> float:
        return self.lease.configured


class Sender:
    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        clients: dict[str, ProviderClient],
        pool: asyncpg.Pool,
        ledger: BatchLedger,
        limiter: ProviderRateLimiter,
        publisher: Publisher,
        cancels: CancelWatch,
        record_pool: asyncpg.Pool | None = None,
        auth_rule: AuthRule | None = None,
        canaries: CanaryGate | None = None,
    ) -> None:
        self.settings = settings
        self.auth_rule = auth_rule  # pauses an alert refused for authentication (pausing)
        self.canaries = canaries  # sends an alert's canary first and judges it (canary)
        self.record_pool = record_pool or pool  # the durable record's (synchronous commits)
        self.provider = provider
        self.clients = clients
        self.pool = pool
        self.ledger = ledger
        self.limiter = limiter
        self.publisher = publisher
        self.cancels = cancels
        self.queues = QueueNames.for_prefix(settings.queue_prefix)
        self.draining = False  # set on SIGTERM: unsent pushes of started batches go back
        self._rates: dict[RateKey, float] = {}  # last rate the limiter reported
        self._pushes = {o: metrics.PUSHES.labels(provider, o) for o in Outcome}
        self._batch_seconds = metrics.BATCH_SECONDS.labels(provider)
        self._batches = {r: metrics.BATCHES.labels(provider, r) for r in metrics.BATCH_RESULTS}
        self._limit_wait = metrics.RATE_LIMIT_WAIT.labels(provider)
        ledger.epoch.on_recovered.append(self._reseed_rates)

    async def _reseed_rates(self) -> None:
        """Redis lost the shared rate limits: start them from what this worker last knew
        rather than from the configured ceiling."""
        for key, rate in self._rates.items():
            await self.limiter.seed(key, rate)

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
        if self._paused(batch):
            await self._defer(batch, "paused")  # held until resumed (pushfan.pausing)
            return
        # One lease per batch, whatever the attempt: a redelivered attempt and its retry
        # (a broker restart can put both in flight) must not send the same devices at once.
        rate_key = RateKey(self.provider, rate_subject(batch))
        # Reserve the first slice along with the lease, unless nothing will be sent (a
        # cancelled alert's batches must not run up the shared rate limit).
        sendable = batch.route in self.clients and not self._dropped(batch)
        async with self.ledger.lease(
            batch.alert_id,
            batch.batch_id,
            batch.device_ids,
            rate_key,
            self._slice_size(rate_key) if sendable else 0,
            self.settings.rate_limit(self.provider, rate_key.app),
        ) as lease:
            if lease is None:
                await self._defer(batch)
            else:
                await self._send_held(batch, lease)

    async def _send_held(self, batch: SendBatch, lease: Lease) -> None:
        """Everything after the lease is taken: steps 2 to 6 of the module docstring."""
        pending = self._pending(batch, lease)
        if not pending.ids:
            return  # nothing to record: the lease is released on the way out
        if self._dropped(batch):
            await self._end_unsent(pending, self._drop_outcome(batch))
            return
        client = self.clients.get(batch.route)
        if client is None:
            # No credentials for this app here: nothing can send it, count it failed.
            log.error(
                "batch %s: no %s credentials for app %r (%s)",
                batch.batch_id,
                self.provider,
                batch.app,
                batch.environment,
            )
            await self._end_unsent(pending, Outcome.FAILED, NO_CREDENTIALS)
            return
        pending, in_canary = await self._canary_admit(pending)
        if not pending.ids:
            return  # all of it waits for the canary's verdict
        result, feedback = await self._send_paced(client, pending)
        await self._judge(batch, result, in_canary)
        if result.invalid:
            await registry.deactivate(self.pool, result.invalid)
            await self._report_invalid(batch, result.invalid)
        # RETRIED pushes of the last attempt count failed; earlier ones are republished, but
        # only after the outcomes are recorded: if the broker is away when the retry is
        # published, the batch comes back and dedup skips everything that already went out.
        exhausted = bool(result.retried) and batch.attempt + 1 > self.settings.retry_max_attempts
        outcomes = await self._settle_stopped(batch, result)
        outcomes[Outcome.FAILED] = result.failed + (result.retried if exhausted else [])
        counts = await self._record(
            lease, batch.attempt, outcomes, len(result.retried), feedback, result.reason_of
        )
        if result.reasons:
            log.info("batch %s attempt %d: %s", batch.batch_id, batch.attempt, result.reasons)
        if result.retried:
            await self._retry_or_give_up(batch, result, exhausted)
        await self._finish(batch.alert_id, counts)

    def _pending(self, batch: SendBatch, lease: Lease) -> Pending:
        """The batch's devices that have no final outcome yet; counts the others."""
        flags = lease.pending
        ids = [d for d, p in zip(batch.device_ids, flags, strict=True) if p]
        tokens = [t for t, p in zip(batch.tokens, flags, strict=True) if p]
        skipped = len(batch.device_ids) - len(ids)
        if skipped:
            self._pushes[Outcome.DEDUPLICATED].inc(skipped)
        return Pending(batch, lease, ids, tokens)

    async def _end_unsent(
        self, pending: Pending, outcome: Outcome, reason: str | None = None
    ) -> None:
        """Record every pending push under `outcome` (and `reason`) without sending any."""
        reason_of = dict.fromkeys(pending.ids, reason) if reason else {}
        counts = await self._record(
            pending.lease, pending.batch.attempt, {outcome: pending.ids}, reason_of=reason_of
        )
        await self._finish(pending.batch.alert_id, counts)

    async def _settle_stopped(
        self, batch: SendBatch, result: SendResult
    ) -> dict[Outcome, list[int]]:
        """The final outcomes of the batch but FAILED. `stop` fired mid-batch: the unsent
        count CANCELLED or EXPIRED, or, when the worker is only draining, go back to the work
        queue for another worker (no outcome)."""
        outcomes = {Outcome.DELIVERED: result.delivered, Outcome.INVALID: result.invalid}
        if not result.stopped:
            return outcomes
        if self._dropped(batch):
            outcomes[self._drop_outcome(batch)] = result.stopped
        else:
            await self._hand_back(batch, result.stopped)
        return outcomes

    async def _record(
        self,
        lease: Lease,
        attempt: int,
        outcomes: dict[Outcome, list[int]],
        retryable: int = 0,
        feedback: Feedback = NO_FEEDBACK,
        reason_of: dict[int, str] | None = None,
    ) -> Counts:
        """Record the batch's final outcomes (with the reasons of refused pushes) and the last
        slice's feedback, release the lease, count the pushes; returns the alert's counters.
        The outcomes go to the durable record first, then to Redis; each waits out an outage
        of its store."""
        sizes, packed = outcome_args(outcomes)
        reasons = reason_args(outcomes, reason_of or {})
        await outages.until_available(
            lambda: outcome_record.write_outcomes(
                self.record_pool,
                lease.alert_id,
                lease.batch_id,
                attempt,
                sizes,
                packed,
                retryable,
                reasons,
            ),
            f"batch {lease.batch_id}'s record",
        )
        counts, rate = await outages.until_available(
            lambda: self.ledger.end(lease, outcomes, retryable, feedback),
            f"batch {lease.batch_id}'s outcomes",
        )
        if rate is not None:
            self._rates[lease.rate_key] = rate
        for outcome, ids in outcomes.items():
            if ids:
                self._pushes[outcome].inc(len(ids))
        return counts

    async def _defer(self, batch: SendBatch, why: str = "deferred") -> None:
        """Another worker is sending this very batch: look again later, when dedup will
        skip what it delivered (or its lease has lapsed, if it died). A paused alert's batch
        waits the same way, as it is."""
        rung, expiration_ms = self.queues.delay_for(DEFER_MS)
        await self.publisher.publish_delayed(
            rung,
            self.queues.send[self.provider],
            encode(batch),
            f"{batch.batch_id}#{batch.attempt}#{why}",
            expiration_ms,
        )

    async def _hand_back(self, batch: SendBatch, unsent: list[int]) -> None:
        """Republish the targets this draining worker did not send, same batch id and
        attempt, straight to the work queue (they were never tried: no backoff)."""
        await self.publisher.publish(
            self.queues.send[self.provider],
            encode(_subset(batch, unsent)),
            f"{batch.batch_id}#{batch.attempt}#handback",
        )

    def _slice_size(self, rate_key: RateKey) -> int:
        """Pushes per slice: `PACE_WINDOW_S` of the rate in force; until the limiter has told
        this worker the rate, a small first slice."""
        rate = self._rates.get(rate_key)
        return FIRST_SLICE if rate is None else max(1, int(rate * PACE_WINDOW_S))

    async def _send_paced(
        self, client: ProviderClient, pending: Pending
    ) -> tuple[SendResult, Feedback]:
        """Send the pending pushes as the shared rate limit allows. Normally that is one
        slice, the one the lease reserved; when the batch is more than `PACE_WINDOW_S` of
        the rate in force (a low or adapted quota), it goes out in slices of that size, each
        reserved and waited for, so the provider sees a steady rate rather than 500-push
        bursts. Returns the result and the last slice's feedback, which `end` reports."""
        lease, key = pending.lease, pending.rate_key
        batch, ids, tokens = pending.batch, pending.ids, pending.tokens

        def stop() -> bool:
            return self.draining or self._dropped(batch) or self._paused(batch)

        if lease.rate is not None:
            self._rates[key] = lease.rate
        reserved, wait = lease.reserved, lease.wait_s
        result = SendResult()
        feedback = NO_FEEDBACK
        start = 0
        while start < len(ids):
            if reserved:
                end, reserved = start + reserved, 0
            else:
                end = min(len(ids), start + self._slice_size(key))
                wait, self._rates[key] = await self.limiter.acquire(
                    key, end - start, pending.configured
                )
            self._limit_wait.observe(wait)
            if wait > 0:
                await asyncio.sleep(wait)
            part = await client.send(batch.notification, ids[start:end], tokens[start:end], stop)
            result.merge(part)
            feedback = Feedback(
                len(part.delivered) + len(part.invalid) + len(part.failed), part.throttled
            )
            # Feedback per slice: a 429 adapts the shared rate before the next slice leaves.
            if end < len(ids) and feedback:
                self._rates[key] = await self.limiter.report(key, feedback, pending.configured)
                feedback = NO_FEEDBACK
            start = end
        return result, feedback

    def _paused(self, batch: SendBatch) -> bool:
        """Paused and not to be dropped anyway (a cancel or the TTL wins over a pause)."""
        return self.cancels.is_paused(batch.alert_id) and not self._dropped(batch)

    async def _canary_admit(self, pending: Pending) -> tuple[Pending, bool]:
        """Narrow a first attempt of a canary alert's batch to what room is left in the
        canary; the rest waits on the delay ladder. True when the pushes are canary ones."""
        batch = pending.batch
        if self.canaries is None or batch.canary is None or batch.attempt:
            return pending, False
        taken = (await self.canaries.admit(batch.alert_id, batch.canary, len(pending.ids))).taken
        if taken is None:
            return pending, False  # judged: everything goes
        if taken < len(pending.ids):
            await self._defer(_subset(batch, pending.ids[taken:]), "canary")
            pending = Pending(batch, pending.lease, pending.ids[:taken], pending.tokens[:taken])
        return pending, True

    async def _judge(self, batch: SendBatch, result: SendResult, in_canary: bool) -> None:
        """Count the batch for its canary, or for the auth pause rule when it has none; stop
        the alert here at once if it paused."""
        attempted = len(result.delivered) + len(result.invalid)
        attempted += len(result.failed) + len(result.retried)
        paused = False
        if in_canary and self.canaries is not None and batch.canary is not None:
            bad = bad_answers(len(result.invalid), len(result.failed), result.reasons)
            paused = await self.canaries.observe(batch.alert_id, batch.canary, attempted, bad)
        elif batch.canary is None and self.auth_rule is not None:
            refused = auth_refusals(result.reasons)
            paused = await self.auth_rule.observe(batch.alert_id, attempted, refused)
        if paused:
            self.cancels.note_paused(batch.alert_id)

    def _dropped(self, batch: SendBatch) -> bool:
        expires_at = batch.notification.expires_at
        expired = bool(expires_at) and time.time() >= expires_at
        return expired or self.cancels.is_cancelled(batch.alert_id)

    def _drop_outcome(self, batch: SendBatch) -> Outcome:
        """Why a dropped batch's pushes do not go out: a cancel wins over the TTL."""
        return Outcome.CANCELLED if self.cancels.is_cancelled(batch.alert_id) else Outcome.EXPIRED

    async def _retry_or_give_up(
        self, batch: SendBatch, result: SendResult, exhausted: bool
    ) -> None:
        """Republish the RETRIED pushes to the delay ladder, or, when they ran out of
        attempts (counted failed), to the dead-letter queue for inspection."""
        next_attempt = batch.attempt + 1
        subset = msgspec.structs.replace(_subset(batch, result.retried), attempt=next_attempt)
        message_id = f"{batch.batch_id}#{next_attempt}"
        if exhausted:
            await self.publisher.publish(self.queues.dead, encode(subset), message_id)
            log.warning(
                "batch %s: %d targets failed after %d attempts",
                batch.batch_id,
                len(subset.device_ids),
                next_attempt,
            )
            return
        delay = backoff_s(self.settings, batch.attempt, result.retry_after)
        rung, expiration_ms = self.queues.delay_for(int(delay * 1000))
        await self.publisher.publish_delayed(
            rung, self.queues.send[self.provider], encode(subset), message_id, expiration_ms
        )
        self._pushes[Outcome.RETRIED].inc(len(subset.device_ids))

    async def _report_invalid(self, batch: SendBatch, invalid: list[int]) -> None:
        """Queue the dead tokens for the app's webhook, when it has one."""
        config = self.settings.app(batch.app)
        if config is None or not config.invalid_token_webhook:
            return
        dead = _subset(batch, invalid)
        report = InvalidTokens(
            app=batch.app,
            provider=batch.provider,
            batch_id=batch.batch_id,
            device_ids=dead.device_ids,
            # a web target's token carries its keys: the webhook gets the endpoint
            tokens=[t.split(" ", 1)[0] for t in dead.tokens],
        )
        await self.publisher.publish(
            self.queues.feedback, encode(report), f"{batch.batch_id}#invalid"
        )

    async def _finish(self, alert_id: str, counts: Counts) -> None:
        if counts.done and await alerts.finish(self.pool, alert_id, counts):
            log.info("alert %s finished: %s", alert_id, counts)


def rate_subject(batch: SendBatch) -> str:
    """Whose shared rate limit a batch takes from: its app's for APNs and FCM, its push
    service origin's for web (the expander gives a web batch one origin)."""
    if batch.provider is Provider.WEB and batch.tokens:
        return webpush.origin_of(batch.tokens[0])
    return batch.app


def _subset(batch: SendBatch, device_ids: list[int]) -> SendBatch:
    """The batch narrowed to `device_ids`, in the batch's order, with their tokens."""
    keep = set(device_ids)
    pairs = [(d, t) for d, t in zip(batch.device_ids, batch.tokens, strict=True) if d in keep]
    return msgspec.structs.replace(
        batch, device_ids=[d for d, _ in pairs], tokens=[t for _, t in pairs]
    )
