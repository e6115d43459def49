"""The invalid-token webhook: tells each app's own systems which tokens died, in batches.

Each message is the dead tokens of one send batch. It is POSTed as JSON to the app's
`invalid_token_webhook`; a failed delivery goes back through the delay ladder with the same
id (capped, jittered backoff), and after the last attempt to the dead-letter queue.
"""

from __future__ import annotations

import logging

import httpx
import msgspec
import orjson
from aio_pika.abc import AbstractIncomingMessage

from pushfan.messages import InvalidTokens, decode_invalid, encode
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.backoff import backoff_s
from pushfan.workers.providers.errors import parse_retry_after
from pushfan.workers.runner import Poison

log = logging.getLogger(__name__)


class Feedback:
    def __init__(self, settings: Settings, client: httpx.AsyncClient, publisher: Publisher):
        self.settings = settings
        self.client = client
        self.publisher = publisher
        self.queues = QueueNames.for_prefix(settings.queue_prefix)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            report = decode_invalid(message.body)
        except msgspec.DecodeError as exc:
            raise Poison(str(exc)) from exc
        await self.deliver(report)

    async def deliver(self, report: InvalidTokens) -> None:
        config = self.settings.app(report.app)
        url = config.invalid_token_webhook if config else None
        if not url:
            return  # the webhook was removed from the settings since: nobody to tell
        body = orjson.dumps(
            {
                "app": report.app,
                "provider": report.provider,
                "batch_id": report.batch_id,
                "invalid": [
                    {"device_id": d, "token": t}
                    for d, t in zip(report.device_ids, report.tokens, strict=True)
                ],
            }
        )
        retry_after = None
        try:
            response = await self.client.post(
                url,
                content=body,
                headers={"content-type": "application/json", "idempotency-key": report.batch_id},
            )
            if response.is_success:
                return
            reason = f"HTTP {response.status_code}"
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        await self._retry(report, reason, retry_after)

    async def _retry(self, report: InvalidTokens, reason: str, retry_after: float | None) -> None:
        attempt = report.attempt + 1
        again = msgspec.structs.replace(report, attempt=attempt)
        message_id = f"{report.batch_id}#invalid#{attempt}"
        if attempt > self.settings.retry_max_attempts:
            log.warning("webhook for app %s gave up on %s: %s", report.app, report.batch_id, reason)
            await self.publisher.publish(self.queues.dead, encode(again), message_id)
            return
        delay = backoff_s(self.settings, report.attempt, retry_after)
        rung, expiration_ms = self.queues.delay_for(int(delay * 1000))
        log.info(
            "webhook for app %s failed (%s); retry %d in %.1fs", report.app, reason, attempt, delay
        )
        await self.publisher.publish_delayed(
            rung, self.queues.feedback, encode(again), message_id, expiration_ms
        )
