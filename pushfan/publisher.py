"""Publishing with publisher confirms: a publish returns only once the broker has the message.

Workers give a publisher a `retry_window_s`: while the broker restarts, a publish waits for
the robust connection to come back instead of failing the batch that is publishing it
(which would then be redelivered and partly re-sent). The API keeps the default 0 and
answers 503 at once instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange

log = logging.getLogger(__name__)

# What a broker restart looks like to a publisher on a robust connection.
_BROKER_AWAY = (
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    aio_pika.exceptions.ChannelClosed,
    ConnectionError,
)
RETRY_EVERY_S = 0.5


class Publisher:
    def __init__(
        self, channel: AbstractChannel, timeout_s: float, retry_window_s: float = 0.0
    ) -> None:
        self._channel = channel
        self._timeout = timeout_s
        self._retry_window = retry_window_s
        self._exchanges: dict[str, AbstractExchange] = {}

    async def _patiently(self, attempt: Callable[[], Awaitable[object]]) -> None:
        deadline = time.monotonic() + self._retry_window
        while True:
            try:
                await attempt()
                return
            except _BROKER_AWAY as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("broker away (%s); publishing again shortly", type(exc).__name__)
                await asyncio.sleep(RETRY_EVERY_S)

    @property
    def closed(self) -> bool:
        return self._channel.is_closed

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        """Persistent message to `queue`; raises if the broker does not confirm in time."""
        message = aio_pika.Message(
            body,
            message_id=message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
        )
        await self._patiently(
            lambda: self._channel.default_exchange.publish(
                message, routing_key=queue, timeout=self._timeout, mandatory=True
            )
        )

    async def publish_delayed(
        self, exchange: str, queue: str, body: bytes, message_id: str, delay_ms: int
    ) -> None:
        """Persistent message that reaches `queue` after `delay_ms`, held by the broker in the
        delay rung `exchange` (see pushfan.topology)."""
        message = aio_pika.Message(
            body,
            message_id=message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            expiration=delay_ms / 1000,
        )

        async def attempt() -> None:
            target = self._exchanges.get(exchange)
            if target is None:
                target = await self._channel.get_exchange(exchange, ensure=False)
                self._exchanges[exchange] = target
            await target.publish(message, routing_key=queue, timeout=self._timeout, mandatory=True)

        await self._patiently(attempt)

    async def publish_many(self, queue: str, items: Iterable[tuple[bytes, str]]) -> int:
        """Publish concurrently and wait until every one is confirmed; returns the count."""
        tasks = [self.publish(queue, body, message_id) for body, message_id in items]
        await asyncio.gather(*tasks)
        return len(tasks)
