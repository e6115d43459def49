"""Broker topology: the queue names and how they are declared.

Work goes through the default exchange straight to durable queues named after the
configured prefix, so tests and demos that use their own prefix never see each other.

    <p>.expand, <p>.send.{apns,fcm,web}, <p>.feedback        work queues (quorum by default)
        │ rejected without requeue, or redelivered more than `delivery_limit` times
        ▼
    <p>.dead                                                 dead letters, kept for inspection

    <p>.delay.<ms>  (fanout exchange → queue of the same name, one per rung of the ladder)
        │ per-message expiration ≤ the rung's TTL; on expiry the message is dead-lettered
        ▼ to the default exchange with its original routing key = the work queue it came from
    the work queue again

A retry publishes only the failed targets to the rung whose delay covers the wanted backoff,
with the work queue's name as routing key: the broker holds the delay, not a sleeping worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from pushfan.provider import Provider
from pushfan.settings import Settings

# Delay rungs in milliseconds. A message waits in the smallest rung that covers its delay;
# messages in one rung differ by at most the gap to the rung below, which bounds how long
# one can be held up behind another (RabbitMQ expires per-message TTLs at the queue head).
DELAY_RUNGS_MS = (250, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000)


@dataclass(frozen=True)
class QueueNames:
    expand: str
    send: dict[Provider, str]
    feedback: str = ""
    dead: str = ""
    delays: dict[int, str] = field(default_factory=dict)

    @classmethod
    def for_prefix(cls, prefix: str) -> QueueNames:
        return cls(
            expand=f"{prefix}.expand",
            send={p: f"{prefix}.send.{p}" for p in Provider},
            feedback=f"{prefix}.feedback",
            dead=f"{prefix}.dead",
            delays={ms: f"{prefix}.delay.{ms}" for ms in DELAY_RUNGS_MS},
        )

    def work(self) -> list[str]:
        return [self.expand, *self.send.values(), self.feedback]

    def all(self) -> list[str]:
        return [*self.work(), self.dead, *self.delays.values()]

    def delay_for(self, delay_ms: int) -> tuple[str, int]:
        """The rung to wait in for `delay_ms` (capped at the longest rung) and the expiration
        to give the message there."""
        for rung in DELAY_RUNGS_MS:
            if delay_ms <= rung:
                return self.delays[rung], max(1, delay_ms)
        longest = DELAY_RUNGS_MS[-1]
        return self.delays[longest], longest


def _type_args(settings: Settings) -> dict[str, Any]:
    return {"x-queue-type": settings.queue_type}


def _dead_letter_args(settings: Settings) -> dict[str, Any]:
    """Quorum queues dead-letter at most once by default: a message expiring while its
    target is not back yet (a broker restart) would be dropped. At-least-once keeps it until
    the target confirms (it needs reject-publish overflow)."""
    if settings.queue_type != "quorum":
        return {"x-dead-letter-exchange": ""}
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def work_queue_arguments(settings: Settings, names: QueueNames) -> dict[str, Any]:
    args = {
        **_type_args(settings),
        **_dead_letter_args(settings),
        "x-dead-letter-routing-key": names.dead,
    }
    if settings.queue_type == "quorum":
        args["x-delivery-limit"] = settings.delivery_limit
    return args


async def declare(channel: AbstractChannel, settings: Settings) -> dict[str, AbstractQueue]:
    names = QueueNames.for_prefix(settings.queue_prefix)
    queues: dict[str, AbstractQueue] = {}
    queues[names.dead] = await channel.declare_queue(
        names.dead, durable=True, arguments=_type_args(settings)
    )
    work_args = work_queue_arguments(settings, names)
    for name in names.work():
        queues[name] = await channel.declare_queue(name, durable=True, arguments=work_args)
    for rung_ms, name in names.delays.items():
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                **_type_args(settings),
                **_dead_letter_args(settings),  # back via the original routing key
                "x-message-ttl": rung_ms,
            },
        )
        await queue.bind(exchange)
        queues[name] = queue
    return queues


async def connect(settings: Settings) -> aio_pika.abc.AbstractRobustConnection:
    """One robust connection per process: it reconnects and restores channels by itself."""
    return await aio_pika.connect_robust(
        settings.amqp_url.get_secret_value(), client_properties={"connection_name": "pushfan"}
    )


async def delete_all(channel: AbstractChannel, settings: Settings) -> None:
    names = QueueNames.for_prefix(settings.queue_prefix)
    for name in names.all():
        await channel.queue_delete(name)
    for name in names.delays.values():
        await channel.exchange_delete(name)
