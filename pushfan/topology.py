"""Broker topology: the queue names and how they are declared.

Work goes through the default exchange straight to durable queues named after the
configured prefix, so tests and demos that use their own prefix never see each other.
Queues are quorum queues by default (replicated on a RabbitMQ cluster, and they carry a
delivery limit so a poison message cannot loop forever).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from pushfan.settings import Settings

PROVIDERS = ("apns", "fcm")


@dataclass(frozen=True)
class QueueNames:
    expand: str
    send: dict[str, str]

    @classmethod
    def for_prefix(cls, prefix: str) -> QueueNames:
        return cls(expand=f"{prefix}.expand", send={p: f"{prefix}.send.{p}" for p in PROVIDERS})

    def all(self) -> list[str]:
        return [self.expand, *self.send.values()]


def queue_arguments(settings: Settings) -> dict[str, Any]:
    args: dict[str, Any] = {"x-queue-type": settings.queue_type}
    if settings.queue_type == "quorum":
        args["x-delivery-limit"] = settings.delivery_limit
    return args


async def declare(channel: AbstractChannel, settings: Settings) -> dict[str, AbstractQueue]:
    names = QueueNames.for_prefix(settings.queue_prefix)
    args = queue_arguments(settings)
    queues = {}
    for name in names.all():
        queues[name] = await channel.declare_queue(name, durable=True, arguments=args)
    return queues


async def connect(settings: Settings) -> aio_pika.abc.AbstractRobustConnection:
    """One robust connection per process: it reconnects and restores channels by itself."""
    return await aio_pika.connect_robust(
        settings.amqp_url.get_secret_value(), client_properties={"connection_name": "pushfan"}
    )


async def delete_all(channel: AbstractChannel, settings: Settings) -> None:
    for name in QueueNames.for_prefix(settings.queue_prefix).all():
        await channel.queue_delete(name)
