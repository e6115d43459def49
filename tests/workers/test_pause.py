"""Pausing (pushfan.pausing) and the canary (pushfan.canary) in the sender, against the real
Redis, PostgreSQL and RabbitMQ, with an in-memory provider that refuses our credentials as
APNs does (403 InvalidProviderToken) until it is "fixed". The same end to end with the
simulators is in tests/e2e/test_message_kinds.py."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis

from pushfan import alerts, pausing
from pushfan.batch_ledger import BatchLedger
from pushfan.canary import CanaryGate
from pushfan.cancellation import CancelWatch, mark_cancelled
from pushfan.db import Pool
from pushfan.messages import AudienceFilter, Canary, Notification, SendBatch, decode_batch
from pushfan.outcomes import Outcome
from pushfan.progress import Progress
from pushfan.provider import Provider
from pushfan.provider_rate import ProviderRateLimiter
from pushfan.publisher import Publisher
from pushfan.seed import seed_devices
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.sender import Sender

AFTER = 10  # the rule's window here (2,000 by default)


class Credentials:
    """Refuses every push for authentication while `revoked`, else delivers."""

    name = Provider.APNS

    def __init__(self) -> None:
        self.revoked = True
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
            if stop():
                result.stopped.append(device_id)
                continue
            self.sent.append(device_id)
            if self.revoked:
                result.refused(device_id, Outcome.FAILED, 403, "InvalidProviderToken")
            else:
                result.delivered.append(device_id)
        return result

    async def close(self) -> None:
        return None


@pytest.fixture
async def alert_30(pool: Pool, progress: Progress) -> alerts.Alert:
    async with pool.acquire() as conn:
        await seed_devices(conn, 30, ios_fraction=1.0, apps=["alpha"])
    alert, _ = await alerts.create(
        pool, alerts.AlertIn("t", "b", {}, AudienceFilter(), 600, "high"), None, None
    )
    await progress.plan(alert.id, 1, 31, 1)
    await progress.shard_done(alert.id, 0, 30)
    return alert


def batch(alert: alerts.Alert, n: int) -> SendBatch:
    ids = list(range(n * 10 + 1, n * 10 + 11))
    return SendBatch(
        alert.id,
        f"{alert.id}:0:apns:alpha:{n}",
        Provider.APNS,
        "alpha",
        alert.notification(),
        ids,
        [f"{i:064x}" for i in ids],
    )


@pytest.fixture
def sender(
    settings: Settings,
    pool: Pool,
    redis: aioredis.Redis,
    progress: Progress,
    publisher: Publisher,
    cancels: CancelWatch,
) -> Sender:
    rule = pausing.AuthRule(redis, pool, settings.redis_prefix, AFTER, 600)
    gate = CanaryGate(redis, pool, settings.redis_prefix, 600, 30)
    return Sender(
        settings,
        Provider.APNS,
        {"alpha": Credentials()},
        pool,
        BatchLedger.from_settings(redis, settings, progress.epoch),
        ProviderRateLimiter.from_settings(redis, settings),
        publisher,
        cancels,
        auth_rule=rule,
        canaries=gate,
    )


async def _next(channel: aio_pika.abc.AbstractChannel, settings: Settings) -> SendBatch:
    work = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).send[Provider.APNS], passive=True
    )
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        message = await work.get(fail=False, no_ack=True)
        if message is not None:
            return decode_batch(message.body)
        await asyncio.sleep(0.05)
    raise AssertionError("no batch came back to the work queue")


async def test_revoked_credentials_pause_the_alert_and_resume_sends_the_rest_once(
    settings: Settings,
    pool: Pool,
    redis: aioredis.Redis,
    cancels: CancelWatch,
    channel: aio_pika.abc.AbstractChannel,
    sender: Sender,
    alert_30: alerts.Alert,
) -> None:
    provider = sender.clients["alpha"]
    assert isinstance(provider, Credentials)
    await sender.process(batch(alert_30, 0))  # the first 10, all refused: the rule fires
    paused = await alerts.get(pool, alert_30.id)
    assert paused is not None and paused.status == "paused"
    assert paused.paused_reason == pausing.AUTH_REFUSED
    await cancels.refresh()  # another worker's view after its next poll
    assert cancels.is_paused(alert_30.id)
    await sender.process(batch(alert_30, 1))  # held: nothing sent, nothing counted
    assert len(provider.sent) == AFTER
    provider.revoked = False  # the key is fixed
    resumed = await alerts.resume(pool, alert_30.id)
    assert resumed is not None and resumed.status == "queued"
    await pausing.mark_resumed(redis, settings.redis_prefix, alert_30.id, 600)
    await cancels.refresh()
    held = await _next(channel, settings)  # the held batch, back from the delay ladder
    assert held == batch(alert_30, 1)
    await sender.process(held)
    await sender.process(batch(alert_30, 1))  # a duplicate of it sends nothing twice
    await sender.process(batch(alert_30, 2))
    done = await alerts.get(pool, alert_30.id)
    assert done is not None and done.status == "done"
    assert (done.audience, done.delivered, done.failed) == (30, 20, 10)
    assert sorted(provider.sent) == list(range(1, 31))


async def test_a_pause_mid_batch_hands_the_unsent_back_uncounted(
    settings: Settings,
    pool: Pool,
    progress: Progress,
    cancels: CancelWatch,
    channel: aio_pika.abc.AbstractChannel,
    sender: Sender,
    alert_30: alerts.Alert,
) -> None:
    provider = sender.clients["alpha"]
    assert isinstance(provider, Credentials)
    provider.revoked = False
    real_send = provider.send

    async def pause_at_five(
        notification: Notification, ids: list[int], tokens: list[str], stop: StopCheck = never
    ) -> SendResult:
        def stop_after_four() -> bool:
            if len(provider.sent) == 4:
                cancels.note_paused(alert_30.id)  # paused elsewhere, seen by the poll
            return stop()

        return await real_send(notification, ids, tokens, stop_after_four)

    provider.send = pause_at_five  # type: ignore[method-assign,assignment]
    await sender.process(batch(alert_30, 0))
    counts = await progress.counts(alert_30.id)
    assert counts.delivered == 4 and counts.finished == 4
    back = await _next(channel, settings)
    assert back.device_ids == [5, 6, 7, 8, 9, 10] and back.attempt == 0
    await sender.process(back)  # still paused: held again
    assert len(provider.sent) == 4


async def test_one_accepted_push_in_the_window_keeps_the_alert_going(
    pool: Pool,
    sender: Sender,
    alert_30: alerts.Alert,
) -> None:
    provider = sender.clients["alpha"]
    assert isinstance(provider, Credentials)
    provider.revoked = False
    await sender.process(batch(alert_30, 0))
    provider.revoked = True  # refused only after the rule judged the alert: no pause
    await sender.process(batch(alert_30, 1))
    await sender.process(batch(alert_30, 2))
    done = await alerts.get(pool, alert_30.id)
    assert done is not None and done.status == "done"
    assert (done.delivered, done.failed) == (10, 20)


async def test_a_paused_alert_cancelled_counts_its_held_pushes_cancelled(
    settings: Settings,
    pool: Pool,
    redis: aioredis.Redis,
    cancels: CancelWatch,
    sender: Sender,
    alert_30: alerts.Alert,
) -> None:
    await sender.process(batch(alert_30, 0))
    await alerts.cancel(pool, alert_30.id)
    await mark_cancelled(redis, settings.redis_prefix, alert_30.id, 60)
    await cancels.refresh()
    await sender.process(batch(alert_30, 1))
    await sender.process(batch(alert_30, 2))
    done = await alerts.get(pool, alert_30.id)
    assert done is not None and done.status == "cancelled"
    assert (done.audience, done.failed, done.cancelled) == (30, 10, 20)


def whole(alert: alerts.Alert, canary: Canary) -> SendBatch:
    """All 30 devices in one batch of a canary alert."""
    ids = list(range(1, 31))
    return SendBatch(
        alert.id,
        f"{alert.id}:0:apns:alpha:0",
        Provider.APNS,
        "alpha",
        alert.notification(),
        ids,
        [f"{i:064x}" for i in ids],
        canary=canary,
    )


async def test_a_failing_canary_pauses_after_its_slice_and_resume_sends_the_rest(
    settings: Settings,
    pool: Pool,
    redis: aioredis.Redis,
    cancels: CancelWatch,
    channel: aio_pika.abc.AbstractChannel,
    sender: Sender,
    alert_30: alerts.Alert,
) -> None:
    provider = sender.clients["alpha"]
    assert isinstance(provider, Credentials)
    await sender.process(whole(alert_30, Canary(max_failure_ratio=0.2, devices=8)))
    assert len(provider.sent) == 8  # the canary only
    paused = await alerts.get(pool, alert_30.id)
    assert paused is not None and paused.status == "paused"
    assert paused.paused_reason is not None and "8 of 8" in paused.paused_reason
    await cancels.refresh()
    held = await _next(channel, settings)  # the rest, back from the delay ladder
    assert held.device_ids == list(range(9, 31)) and held.attempt == 0
    await sender.process(held)  # paused: held again, nothing sent
    assert len(provider.sent) == 8
    provider.revoked = False
    assert await alerts.resume(pool, alert_30.id) is not None
    await pausing.mark_resumed(redis, settings.redis_prefix, alert_30.id, 600)
    await cancels.refresh()
    await sender.process(await _next(channel, settings))
    done = await alerts.get(pool, alert_30.id)
    assert done is not None and done.status == "done"
    assert (done.audience, done.delivered, done.failed) == (30, 22, 8)
    assert sorted(provider.sent) == list(range(1, 31))


async def test_a_good_canary_lets_the_rest_go_without_a_pause(
    settings: Settings,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    sender: Sender,
    alert_30: alerts.Alert,
) -> None:
    """percent 10 of the 30 counted: 3 first; one bad answer of 3 is not more than 0.34."""
    provider = sender.clients["alpha"]
    assert isinstance(provider, Credentials)
    provider.revoked = False
    canary = Canary(max_failure_ratio=0.34, percent=10)
    first = whole(alert_30, canary)
    await sender.process(msgspec.structs.replace(first, device_ids=[1], tokens=[f"{1:064x}"]))
    provider.revoked = True  # the second and third answers of the canary: one bad
    await sender.process(msgspec.structs.replace(first, device_ids=[2], tokens=[f"{2:064x}"]))
    provider.revoked = False
    await sender.process(first)  # the third of the canary now, the rest held
    assert len(provider.sent) == 3
    state = await alerts.get(pool, alert_30.id)
    assert state is not None and state.status == "queued"
    await sender.process(await _next(channel, settings))
    done = await alerts.get(pool, alert_30.id)
    assert done is not None and done.status == "done"
    assert (done.delivered, done.failed) == (29, 1)
