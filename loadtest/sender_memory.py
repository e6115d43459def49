"""Is a sender's memory bounded by its prefetch, not by the backlog? (issue: Fast)

Queues 10^7 pushes (20,000 batches of 500) for one alert straight onto the FCM send queue of
a fresh stack, starts one real sender against the FCM simulator, samples its RSS while it
works through the backlog for --seconds, then cancels the alert and tears everything down.
Prints the sender's peak RSS and how many pushes it sent meanwhile.

    python loadtest/sender_memory.py [--pushes 10000000] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time

import aio_pika

from loadtest.stack import Stack, peak_rss_mb
from pushfan import topology
from pushfan.messages import Notification, SendBatch, encode
from pushfan.provider import Provider
from pushfan.seed import fcm_token
from pushfan.settings import Settings


async def fill(settings: Settings, alert_id: str, pushes: int, batch: int) -> float:
    """Publish the backlog with confirms; returns seconds taken."""
    started = time.monotonic()
    names = topology.QueueNames.for_prefix(settings.queue_prefix)
    note = Notification(
        "Backlog", "memory check", collapse_id=alert_id, expires_at=int(time.time()) + 3600
    )
    tokens = [fcm_token() for _ in range(batch)]  # the same tokens: the size is what matters
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel, settings)
        pending: list[asyncio.Future[object]] = []
        for n in range(pushes // batch):
            ids = list(range(1 + n * batch, 1 + (n + 1) * batch))
            body = encode(
                SendBatch(
                    alert_id, f"{alert_id}:0:fcm:demo:{n}", Provider.FCM, "demo", note, ids, tokens
                )
            )
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            pending.append(
                asyncio.ensure_future(
                    channel.default_exchange.publish(message, routing_key=names.send[Provider.FCM])
                )
            )
            if len(pending) >= 200:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    name = f"memory_{secrets.token_hex(3)}"
    stack = Stack.create(name)
    alert_id = f"00000000-0000-4000-8000-{secrets.token_hex(6)}"
    try:
        stack.prepare(0)
        filled = asyncio.run(fill(stack.settings, alert_id, args.pushes, 500))
        print(f"queued {args.pushes:,} pushes in {filled:.0f} s")
        stack.start_simulators()
        sender = stack.spawn("sender-fcm", ["worker", "sender", "--provider", "fcm"])
        stack.wait_for_log(sender, "consuming")
        samples = []
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            samples.append(peak_rss_mb(sender.process.pid) or 0.0)
            time.sleep(1)
        sent = int(stack.sim_stats("fcm")["accepted"])
        result = {
            "pushes_queued": args.pushes,
            "sender_peak_rss_mb": round(max(samples), 1),
            "rss_after_5s_mb": round(samples[min(5, len(samples) - 1)], 1),
            "pushes_sent_meanwhile": sent,
            "seconds": args.seconds,
        }
        print(json.dumps(result))
        return 0 if result["sender_peak_rss_mb"] < 200 else 1
    finally:
        stack.stop()
        stack.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
