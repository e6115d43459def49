"""The invalid-token webhook: dead tokens reach the app's URL in batches, and a failing
webhook is retried through the broker's delay ladder (real RabbitMQ; the app's endpoint is an
httpx MockTransport, since it is the caller's system, not ours)."""

from __future__ import annotations

import time

import aio_pika
import httpx
import orjson

from pushfan.messages import InvalidTokens, decode_invalid
from pushfan.provider import Provider
from pushfan.publisher import Publisher
from pushfan.settings import AppConfig, Settings
from pushfan.topology import QueueNames
from pushfan.workers.feedback import Feedback

REPORT = InvalidTokens("alpha", Provider.APNS, "a:0:apns:alpha:0", [3, 7], ["aa" * 32, "bb" * 32])


def with_webhook(settings: Settings) -> Settings:
    apps = [AppConfig(name="alpha", invalid_token_webhook="https://hooks.example/dead")]
    return settings.model_copy(update={"apps": apps, "retry_base_s": 0.2})


async def test_dead_tokens_are_posted_to_the_apps_webhook(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> None:
    seen: list[httpx.Request] = []

    def app_endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(app_endpoint)) as client:
        feedback = Feedback(with_webhook(settings), client, Publisher(channel, 5))
        await feedback.deliver(REPORT)
    assert len(seen) == 1
    body = orjson.loads(seen[0].content)
    assert body["app"] == "alpha" and body["batch_id"] == REPORT.batch_id
    assert body["invalid"] == [
        {"device_id": 3, "token": "aa" * 32},
        {"device_id": 7, "token": "bb" * 32},
    ]
    assert seen[0].headers["idempotency-key"] == REPORT.batch_id


async def test_a_failing_webhook_is_retried_later_through_the_ladder(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> None:
    """503 with Retry-After: the report waits in a delay rung and comes back, attempt + 1."""
    failing = httpx.MockTransport(lambda _: httpx.Response(503, headers={"retry-after": "1"}))
    async with httpx.AsyncClient(transport=failing) as client:
        feedback = Feedback(with_webhook(settings), client, Publisher(channel, 5))
        await feedback.deliver(REPORT)
    queue = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).feedback, passive=True
    )
    started = time.monotonic()
    message = None
    while message is None and time.monotonic() - started < 5:
        message = await queue.get(fail=False, no_ack=True)
    assert message is not None, "the retry never came back"
    assert time.monotonic() - started >= 0.9  # Retry-After honoured
    again = decode_invalid(message.body)
    assert again.attempt == 1 and again.tokens == REPORT.tokens


async def test_after_the_last_attempt_the_report_is_dead_lettered(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> None:
    last = settings.model_copy(update={"retry_max_attempts": 0})
    failing = httpx.MockTransport(lambda _: httpx.Response(500))
    async with httpx.AsyncClient(transport=failing) as client:
        await Feedback(with_webhook(last), client, Publisher(channel, 5)).deliver(REPORT)
    dead = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).dead, passive=True
    )
    message = await dead.get(timeout=5)
    assert decode_invalid(message.body).device_ids == [3, 7]
