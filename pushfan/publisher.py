"""Publishing with publisher confirms: a publish returns only once the broker has the message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange


class Publisher:
    def __init__(self, channel: AbstractChannel, timeout_s: float) -> None:
        self._channel = channel
        self._timeout = timeout_s
        self._exchanges: dict[str, AbstractExchange] = {}

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
        await self._channel.default_exchange.publish(
            message, routing_key=queue, timeout=self._timeout, mandatory=True
        )

    async def publish_delayed(
        self, exchange: str, queue: str, body: bytes, message_id: str, delay_ms: int
    ) -> None:
        """Persistent message that reaches `queue` after `delay_ms`, held by the broker in the
        delay rung `exchange` (see pushfan.topology)."""
        target = self._exchanges.get(exchange)
        if target is None:
            target = await self._channel.get_exchange(exchange, ensure=False)
            self._exchanges[exchange] = target
        message = aio_pika.Message(
            body,
            message_id=message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            expiration=delay_ms / 1000,
        )
        await target.publish(message, routing_key=queue, timeout=self._timeout, mandatory=True)

    async def publish_many(self, queue: str, items: Iterable[tuple[bytes, str]]) -> int:
        """Publish concurrently and wait until every one is confirmed; returns the count."""
        tasks = [self.publish(queue, body, message_id) for body, message_id in items]
        await asyncio.gather(*tasks)
        return len(tasks)
