"""The seed's design, faithfully naive, as the benchmark's first baseline.

One RabbitMQ message per push: `publish` reads every active device and publishes one
persistent message each (publisher confirms, a window of unconfirmed publishes); `consume`
takes them with a prefetch and sends each one on its own through the fast provider (one
`send` call of one target per message), then acks. No batching, no dedup ledger: what a
straightforward first version does. The pushes carry the same notification and collapse id
as the real pipeline's, so the simulators count them the same way.

    python -m loadtest.seed_design publish --alert-id ID
    python -m loadtest.seed_design consume --provider apns|fcm --alert-id ID
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import aio_pika
import msgspec
import uvloop

from pushfan import db
from pushfan.messages import Notification
from pushfan.provider import PLATFORM_PROVIDER, Provider
from pushfan.settings import Settings
from pushfan.workers.providers.build import build_providers

log = logging.getLogger(__name__)
PUBLISH_WINDOW = 500  # unconfirmed publishes at once
PREFETCH = 500


class Push(msgspec.Struct, frozen=True):
    alert_id: str
    app: str
    device_id: int
    token: str
    notification: Notification


def queue_name(settings: Settings, provider: str) -> str:
    return f"{settings.queue_prefix}.seed.{provider}"


def notification(alert_id: str) -> Notification:
    return Notification(
        title="Global alert",
        body="pushfan bench: this is a test of the mass notification system.",
        data={"kind": "bench"},
        expires_at=int(time.time()) + 3600,
        collapse_id=alert_id,
    )


async def publish(settings: Settings, alert_id: str) -> None:
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    channel = await connection.channel(publisher_confirms=True)
    for provider in Provider:
        await channel.declare_queue(queue_name(settings, provider), durable=True)
    note = notification(alert_id)
    encode = msgspec.json.Encoder().encode
    conn = await db.connect(settings)
    pending: set[asyncio.Future[object]] = set()
    sent = 0
    try:
        rows = await conn.fetch("SELECT id, platform, app, token FROM devices WHERE active")
        for row in rows:
            push = Push(alert_id, row["app"], row["id"], row["token"], note)
            provider = PLATFORM_PROVIDER[row["platform"]]
            message = aio_pika.Message(encode(push), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            publish = channel.default_exchange.publish(
                message, routing_key=queue_name(settings, provider)
            )
            pending.add(asyncio.ensure_future(publish))
            sent += 1
            if len(pending) >= PUBLISH_WINDOW:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    finished.result()
        if pending:
            await asyncio.gather(*pending)
    finally:
        await conn.close()
        await connection.close()
    print(f"published {sent}", flush=True)


async def consume(settings: Settings, provider_name: str) -> None:
    providers = build_providers(settings, provider_name)
    decode = msgspec.json.Decoder(Push).decode
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(queue_name(settings, provider_name), durable=True)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            push = decode(message.body)
            await providers.by_app[push.app].send(push.notification, [push.device_id], [push.token])
            await message.ack()

        await queue.consume(on_message)
        print("consuming", flush=True)
        await stop.wait()
    finally:
        await connection.close()
        await providers.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=["publish", "consume"])
    parser.add_argument("--provider", choices=list(Provider))
    parser.add_argument("--alert-id", required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=logging.WARNING)
    if args.role == "publish":
        uvloop.run(publish(settings, args.alert_id))
    else:
        uvloop.run(consume(settings, args.provider))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
