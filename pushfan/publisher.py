"""Publishing with publisher confirms: a publish returns only once the broker has the message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel


class Publisher:
    def __init__(self, channel: AbstractChannel, timeout_s: float) -> None:
        self._channel = channel
        self._timeout = timeout_s

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

    async def publish_many(self, queue: str, items: Iterable[tuple[bytes, str]]) -> int:
        """Publish concurrently and wait until every one is confirmed; returns the count."""
        tasks = [self.publish(queue, body, message_id) for body, message_id in items]
        await asyncio.gather(*tasks)
        return len(tasks)
