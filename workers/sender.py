"""The sender: one batch of (device id, token) for one (provider, app) at a time.

For each batch: skip devices that already have a final outcome for this alert (one Redis
round trip), drop the batch as expired if the alert's TTL passed, send the rest over HTTP/2,
deactivate dead tokens (one statement), record every outcome and bump the counters (one
Redis round trip), mark the alert done if this batch finished it, then ack.

Transient answers (429, 5xx, timeouts) are counted `failed` with a `retryable` tally for
now; the broker-owned retry ladder replaces that (issue "Delivery guarantees").
"""

from __future__ import annotations

import logging
import time

import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from pushfan import alerts, metrics, registry
from pushfan.messages import SendBatch, decode_batch
from pushfan.progress import Counts, Progress
from workers.providers.base import Provider
from workers.runner import Poison

log = logging.getLogger(__name__)


class Sender:
    def __init__(
        self,
        provider_name: str,
        providers: dict[str, Provider],
        pool: asyncpg.Pool,
        progress: Progress,
    ) -> None:
        self.provider_name = provider_name
        self.providers = providers
        self.pool = pool
        self.progress = progress
        self._pushes = {o: metrics.PUSHES.labels(provider_name, o) for o in metrics.OUTCOMES}
        self._batch_seconds = metrics.BATCH_SECONDS.labels(provider_name)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            batch = decode_batch(message.body)
        except msgspec.DecodeError as exc:
            raise Poison(str(exc)) from exc
        await self.process(batch)
        self._batch_seconds.observe(time.perf_counter() - started)

    async def process(self, batch: SendBatch) -> None:
        pending = await self.progress.pending(batch.alert_id, batch.device_ids)
        ids = [d for d, p in zip(batch.device_ids, pending, strict=True) if p]
        tokens = [t for t, p in zip(batch.tokens, pending, strict=True) if p]
        skipped = len(batch.device_ids) - len(ids)
        if skipped:
            self._pushes["deduplicated"].inc(skipped)
        if not ids:
            return
        expires_at = batch.notification.expires_at
        if expires_at and time.time() >= expires_at:
            counts = await self.progress.record(batch.alert_id, expired=ids)
            self._pushes["expired"].inc(len(ids))
            await self._settle(batch.alert_id, counts)
            return
        provider = self.providers.get(batch.app)
        if provider is None:
            # No credentials for this app here: nothing can send it, count it failed.
            log.error(
                "batch %s: no %s credentials for app %r",
                batch.batch_id,
                self.provider_name,
                batch.app,
            )
            counts = await self.progress.record(batch.alert_id, failed=ids)
            self._pushes["failed"].inc(len(ids))
            await self._settle(batch.alert_id, counts)
            return
        result = await provider.send(batch.notification, ids, tokens)
        if result.invalid:
            await registry.deactivate(self.pool, result.invalid)
        failed = result.permanent + result.transient
        counts = await self.progress.record(
            batch.alert_id,
            delivered=result.delivered,
            invalid=result.invalid,
            failed=failed,
            retryable=len(result.transient),
        )
        self._pushes["delivered"].inc(len(result.delivered))
        self._pushes["invalid"].inc(len(result.invalid))
        self._pushes["failed"].inc(len(failed))
        if result.reasons:
            log.info("batch %s: %s", batch.batch_id, result.reasons)
        await self._settle(batch.alert_id, counts)

    async def _settle(self, alert_id: str, counts: Counts) -> None:
        if counts.done and await alerts.finish(self.pool, alert_id, counts):
            log.info("alert %s done: %s", alert_id, counts)
