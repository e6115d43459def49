"""The sender's bookkeeping against the real Redis and PostgreSQL, with an in-memory
provider standing in for APNs (the real clients are covered end to end with the simulators)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis

from pushfan import alerts, outcome_query, registry
from pushfan.batch_ledger import BatchLedger
from pushfan.cancellation import CancelWatch, mark_cancelled
from pushfan.db import Pool
from pushfan.messages import AudienceFilter, Notification, SendBatch, decode_batch, decode_invalid
from pushfan.outcomes import Outcome
from pushfan.progress import Progress
from pushfan.provider import Provider
from pushfan.provider_rate import ProviderRateLimiter
from pushfan.publisher import Publisher
from pushfan.seed import seed_devices
from pushfan.settings import AppConfig, Settings
from pushfan.topology import QueueNames
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.sender import Sender


class ScriptedProvider:
    """Answers by device id: ids in `dead` are invalid, in `flaky` transient (429 with
    Retry-After when `throttle`), else delivered. Honours `stop` like the real providers;
    `before_each` runs before every push (to cancel mid-batch)."""

    name = Provider.APNS

    def __init__(
        self,
        dead: frozenset[int] = frozenset(),
        flaky: frozenset[int] = frozenset(),
        before_each: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.dead, self.flaky = dead, flaky
        self.before_each = before_each
        self.sent: list[int] = []

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        result = SendResult()
        for device_id in device_ids:
            if self.before_each:
                await self.before_each(device_id)
            if stop():
                result.stopped.append(device_id)
                continue
            self.sent.append(device_id)
            if device_id in self.dead:
                result.refused(device_id, Outcome.INVALID, 410, "Unregistered")
            elif device_id in self.flaky:
                result.refused(device_id, Outcome.RETRIED, 503, None)
            else:
                result.delivered.append(device_id)
        return result

    async def close(self) -> None:
        return None


SenderFactory = Callable[..., Sender]


@pytest.fixture
def make_sender(
    settings: Settings,
    pool: Pool,
    redis: aioredis.Redis,
    progress: Progress,
    publisher: Publisher,
    cancels: CancelWatch,
) -> SenderFactory:
    """An APNs sender with these providers, on the test's settings or `changed` ones."""

    def make(providers: dict[str, Any], changed: Settings | None = None) -> Sender:
        chosen = changed or settings
        return Sender(
            chosen,
            Provider.APNS,
            providers,
            pool,
            BatchLedger.from_settings(redis, chosen, progress.epoch),
            ProviderRateLimiter.from_settings(redis, chosen),
            publisher,
            cancels,
        )

    return make


@pytest.fixture
async def alert_with_devices(pool: Pool, progress: Progress) -> tuple[alerts.Alert, list[int]]:
    async with pool.acquire() as conn:
        await seed_devices(conn, 10, ios_fraction=1.0, apps=["alpha"])
    alert, _ = await alerts.create(
        pool, alerts.AlertIn("t", "b", {}, AudienceFilter(), 600, "high"), None, None
    )
    await progress.plan(alert.id, 1, 11, 1)
    await progress.shard_done(alert.id, 0, 10)
    return alert, list(range(1, 11))


def batch_for(
    alert: alerts.Alert,
    ids: list[int],
    notification: Notification | None = None,
) -> SendBatch:
    return SendBatch(
        alert.id,
        f"{alert.id}:0:apns:alpha:0",
        Provider.APNS,
        "alpha",
        notification or alert.notification(),
        ids,
        [f"{i:064x}" for i in ids],
    )


async def test_a_redelivered_batch_sends_nothing_twice(
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    provider = ScriptedProvider()
    sender = make_sender({"alpha": provider})
    await sender.process(batch_for(alert, ids[:6]))
    await sender.process(batch_for(alert, ids[:6]))  # redelivered
    await sender.process(batch_for(alert, ids))
    assert sorted(provider.sent) == ids  # each device once
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done" and done.delivered == 10


async def test_dead_tokens_deactivate_devices_and_later_alerts_skip_them(
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    sender = make_sender({"alpha": ScriptedProvider(dead=frozenset({2, 3}))})
    await sender.process(batch_for(alert, ids))
    inactive = await pool.fetch("SELECT id FROM devices WHERE NOT active ORDER BY id")
    assert [r["id"] for r in inactive] == [2, 3]
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done"
    assert (done.delivered, done.invalid, done.failed) == (8, 2, 0)
    streamed = [
        t.id
        async for page in registry.stream_targets(pool, 1, 11, AudienceFilter(), 100)
        for t in page
    ]
    assert 2 not in streamed and 3 not in streamed  # later alerts skip dead devices


async def test_transient_failures_come_back_through_the_delay_ladder(
    settings: Settings,
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    channel: aio_pika.abc.AbstractChannel,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    """Only the failed targets are republished, with the same batch id and attempt + 1; the
    broker holds them for the backoff and hands them back to the work queue."""
    alert, ids = alert_with_devices
    flaky = ScriptedProvider(flaky=frozenset({4, 9}))
    await make_sender({"alpha": flaky}).process(batch_for(alert, ids))
    counts = await progress.counts(alert.id)
    assert (counts.delivered, counts.failed, counts.retryable) == (8, 0, 2)
    assert not counts.done
    work = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).send[Provider.APNS], passive=True
    )
    assert await work.get(fail=False) is None  # still waiting in the delay rung
    started = time.monotonic()
    message = None
    while message is None and time.monotonic() - started < 5:
        message = await work.get(fail=False, no_ack=True)
        await asyncio.sleep(0.05)
    assert message is not None, "the retry never came back"
    assert 0.4 < time.monotonic() - started < 2.5  # base 1 s, jittered into [0.5, 1] s
    retry = decode_batch(message.body)
    assert retry.device_ids == [4, 9] and retry.attempt == 1
    assert retry.batch_id == batch_for(alert, ids).batch_id
    await make_sender({"alpha": ScriptedProvider()}).process(retry)
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done" and done.delivered == 10


async def test_after_the_last_attempt_targets_count_failed_and_are_dead_lettered(
    settings: Settings,
    pool: Pool,
    make_sender: SenderFactory,
    channel: aio_pika.abc.AbstractChannel,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    no_retries = settings.model_copy(update={"retry_max_attempts": 0})
    sender = make_sender({"alpha": ScriptedProvider(flaky=frozenset({5}))}, no_retries)
    await sender.process(batch_for(alert, ids))
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done"
    assert (done.delivered, done.failed) == (9, 1)
    dead = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).dead, passive=True
    )
    message = await dead.get(timeout=5)
    assert decode_batch(message.body).device_ids == [5]


async def test_a_cancelled_alert_sends_nothing_more_even_mid_batch(
    settings: Settings,
    redis: aioredis.Redis,
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    cancels: CancelWatch,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices

    async def cancel_after_three(device_id: int) -> None:
        if device_id == 4:
            await alerts.cancel(pool, alert.id)
            await mark_cancelled(redis, settings.redis_prefix, alert.id, 60)
            await cancels.refresh()

    provider = ScriptedProvider(before_each=cancel_after_three)
    await make_sender({"alpha": provider}).process(batch_for(alert, ids))
    assert provider.sent == [1, 2, 3]
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "cancelled" and done.finished_at is not None
    assert (done.delivered, done.cancelled) == (3, 7)
    # A batch of it arriving later is counted cancelled without a send.
    later = ScriptedProvider()
    await make_sender({"alpha": later}).process(batch_for(alert, ids))
    assert later.sent == []


async def test_an_expired_batch_is_never_sent(
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    provider = ScriptedProvider()
    sender = make_sender({"alpha": provider})
    stale = Notification(title="t", body="b", expires_at=int(time.time()) - 1, collapse_id=alert.id)
    await sender.process(batch_for(alert, ids, stale))
    assert provider.sent == []
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done" and done.expired == 10


async def test_each_device_outcome_is_recorded_with_its_reason(
    settings: Settings,
    pool: Pool,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    """Invalid with the provider's reason, failed with the last status after the last
    attempt, delivered without a reason: all in the batch's one row of the record."""
    alert, ids = alert_with_devices
    no_retries = settings.model_copy(update={"retry_max_attempts": 0})
    provider = ScriptedProvider(dead=frozenset({2}), flaky=frozenset({5}))
    await make_sender({"alpha": provider}, no_retries).process(batch_for(alert, ids))
    key = uuid.UUID(alert.id)
    found = {d: await outcome_query.lookup(pool, key, d) for d in (1, 2, 5)}
    assert [(f.outcome, f.reason) for f in found.values() if f] == [
        ("delivered", None),
        ("invalid", "Unregistered"),
        ("failed", "503"),
    ]
    assert await pool.fetchval("SELECT count(*) FROM outcome_batches") == 1


async def test_an_app_without_credentials_counts_failed(
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    sender = make_sender({})
    await sender.process(batch_for(alert, ids))
    assert (await progress.counts(alert.id)).failed == 10
    found = await outcome_query.lookup(pool, uuid.UUID(alert.id), ids[0])
    assert found is not None and (found.outcome, found.reason) == ("failed", "no credentials")


@pytest.mark.parametrize("attempt", [0, 1])
async def test_two_copies_of_a_batch_at_once_send_once(
    attempt: int,
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    """A redelivered copy arriving while the first is still being sent (a broker restart)
    waits in the delay ladder instead of sending the same pushes again. So does a copy of
    its retry (attempt 1): a broker restart can redeliver attempt 0 while attempt 1 is on
    its way for the same transient devices, so the lease is the batch's, whatever the
    attempt (measured before: ~250 duplicates per 200,000 pushes in a restart with 10% 5xx
    answers)."""
    alert, ids = alert_with_devices
    gate = asyncio.Event()

    async def hold(device_id: int) -> None:
        await gate.wait()

    first, second = ScriptedProvider(before_each=hold), ScriptedProvider(before_each=hold)
    running = asyncio.create_task(make_sender({"alpha": first}).process(batch_for(alert, ids)))
    await asyncio.sleep(0.1)
    copy = msgspec.structs.replace(batch_for(alert, ids), attempt=attempt)
    later = asyncio.create_task(make_sender({"alpha": second}).process(copy))
    await asyncio.sleep(0.3)
    gate.set()
    await asyncio.gather(running, later)
    assert sorted(first.sent) == ids and second.sent == []


async def test_a_draining_sender_hands_back_what_it_did_not_send(
    settings: Settings,
    pool: Pool,
    progress: Progress,
    make_sender: SenderFactory,
    channel: aio_pika.abc.AbstractChannel,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    """SIGTERM mid-batch: what left is recorded, the rest goes back to the work queue."""
    alert, ids = alert_with_devices
    sender = make_sender({})

    async def drain_after_four(device_id: int) -> None:
        if device_id == 5:
            sender.drain()

    sender.clients["alpha"] = ScriptedProvider(before_each=drain_after_four)
    await sender.process(batch_for(alert, ids))
    counts = await progress.counts(alert.id)
    assert counts.delivered == 4 and counts.cancelled == counts.expired == 0
    work = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).send[Provider.APNS], passive=True
    )
    message = await work.get(timeout=5)
    back = decode_batch(message.body)
    assert back.device_ids == [5, 6, 7, 8, 9, 10] and back.attempt == 0


async def test_a_slow_batch_keeps_its_lease_past_the_lease_time(
    settings: Settings,
    make_sender: SenderFactory,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    """The lease is renewed while the batch runs: a copy arriving after `batch_lease_s` but
    before the first finishes still waits instead of sending again."""
    alert, ids = alert_with_devices
    short = settings.model_copy(update={"batch_lease_s": 0.3})
    gate = asyncio.Event()

    async def hold(device_id: int) -> None:
        await gate.wait()

    first, second = ScriptedProvider(before_each=hold), ScriptedProvider()
    senders = [make_sender({"alpha": p}, short) for p in (first, second)]
    running = asyncio.create_task(senders[0].process(batch_for(alert, ids)))
    await asyncio.sleep(1.0)  # three lease times
    await senders[1].process(batch_for(alert, ids))
    gate.set()
    await running
    assert sorted(first.sent) == ids and second.sent == []


async def test_dead_tokens_are_queued_for_the_apps_webhook(
    settings: Settings,
    make_sender: SenderFactory,
    channel: aio_pika.abc.AbstractChannel,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    hooked = settings.model_copy(
        update={"apps": [AppConfig(name="alpha", invalid_token_webhook="https://hooks/x")]}
    )
    provider = ScriptedProvider(dead=frozenset({2, 3}))
    sender = make_sender({"alpha": provider}, hooked)
    await sender.process(batch_for(alert, ids))
    queue = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).feedback, passive=True
    )
    message = await queue.get(timeout=5)
    report = decode_invalid(message.body)
    assert report.app == "alpha" and report.device_ids == [2, 3]
