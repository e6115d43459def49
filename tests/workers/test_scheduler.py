"""The scheduler of `send_at` alerts against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest

from pushfan import alerts
from pushfan.db import Pool
from pushfan.messages import AudienceFilter, decode_expand
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.scheduler import Scheduler
from tests.fixtures.services import drain


def alert_in(send_at: datetime) -> alerts.AlertIn:
    return alerts.AlertIn("t", "b", {}, AudienceFilter(), 600, "high", send_at=send_at)


async def scheduled(pool: Pool, count: int, in_s: float = 3600) -> list[str]:
    at = datetime.now(UTC) + timedelta(seconds=in_s)
    return [(await alerts.create(pool, alert_in(at), None, None))[0].id for _ in range(count)]


async def make_due(pool: Pool) -> None:
    await pool.execute(
        "UPDATE alerts SET send_at = now() - interval '1 second' WHERE status = 'scheduled'"
    )


@pytest.fixture
def queues(settings: Settings) -> QueueNames:
    return QueueNames.for_prefix(settings.queue_prefix)


@pytest.fixture
def scheduler(pool: Pool, publisher: Publisher, queues: QueueNames) -> Scheduler:
    return Scheduler(pool, publisher, queues, 0.2)


async def test_a_scheduled_alert_waits_for_its_time(
    scheduler: Scheduler, pool: Pool, channel: aio_pika.abc.AbstractChannel, queues: QueueNames
) -> None:
    """Given an alert due in an hour, a pass fires nothing and leaves it `scheduled`."""
    (alert_id,) = await scheduled(pool, 1)
    assert await scheduler.fire_due() == []
    assert await drain(channel, queues.expand) == []
    alert = await alerts.get(pool, alert_id)
    assert alert is not None and alert.status == "scheduled" and alert.fired_at is None


async def test_concurrent_schedulers_fire_each_due_alert_once(
    pool: Pool, publisher: Publisher, channel: aio_pika.abc.AbstractChannel, queues: QueueNames
) -> None:
    """Four schedulers passing at once split 250 due alerts (SKIP LOCKED): each alert is
    published once, as the trigger's plan message, and marked `queued` with `fired_at`."""
    ids = await scheduled(pool, 250)
    await make_due(pool)
    schedulers = [Scheduler(pool, publisher, queues, 0.2) for _ in range(4)]
    fired = await asyncio.gather(*(s.fire_due() for s in schedulers))
    flat = [a for part in fired for a in part]
    assert sorted(flat) == sorted(ids)  # every one, none twice
    tasks = [decode_expand(b) for b in await drain(channel, queues.expand)]
    assert sorted(t.alert_id for t in tasks) == sorted(ids)
    assert {t.kind for t in tasks} == {"plan"}
    rows = await pool.fetch("SELECT status, fired_at FROM alerts")
    assert {r["status"] for r in rows} == {"queued"} and all(r["fired_at"] for r in rows)


async def test_cancel_before_the_time_sends_nothing(
    scheduler: Scheduler, pool: Pool, channel: aio_pika.abc.AbstractChannel, queues: QueueNames
) -> None:
    """A cancelled scheduled alert ends at once (finished, no counts) and never fires."""
    (alert_id,) = await scheduled(pool, 1)
    cancelled = await alerts.cancel(pool, alert_id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert cancelled.finished_at is not None
    await pool.execute("UPDATE alerts SET send_at = now() - interval '1 second'")
    assert await scheduler.fire_due() == []
    assert await drain(channel, queues.expand) == []


class DiesAfterPublish(Publisher):
    """A publisher whose process 'dies' right after the broker confirmed: the transaction
    never commits."""

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        await super().publish(queue, body, message_id)
        raise ConnectionResetError("killed after the publish")


async def test_a_pass_that_dies_before_its_commit_is_fired_again_with_the_same_id(
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    publisher: Publisher,
    queues: QueueNames,
) -> None:
    """The row stays `scheduled` (its lock went with the transaction): the next pass fires
    it again under the same message id, which the expander plans once."""
    (alert_id,) = await scheduled(pool, 1)
    await make_due(pool)
    dying = Scheduler(pool, DiesAfterPublish(channel, 5), queues, 0.2)
    with pytest.raises(ConnectionResetError):
        await dying.fire_due()
    alert = await alerts.get(pool, alert_id)
    assert alert is not None and alert.status == "scheduled"
    assert await Scheduler(pool, publisher, queues, 0.2).fire_due() == [alert_id]
    q = await channel.declare_queue(queues.expand, passive=True)
    ids = []
    while (message := await q.get(fail=False, no_ack=True)) is not None:
        ids.append(message.message_id)
    assert ids == [f"{alert_id}:plan", f"{alert_id}:plan"]


async def test_the_running_loop_fires_within_a_second_of_send_at(
    pool: Pool, publisher: Publisher, channel: aio_pika.abc.AbstractChannel, queues: QueueNames
) -> None:
    """Idle, the loop sleeps until the next send_at (or its poll): an alert scheduled by
    another process 0.6 s ahead is queued within 1 s of its time, not earlier."""
    scheduler = Scheduler(pool, publisher, queues, 0.5)
    scheduler.start()
    try:
        await asyncio.sleep(0.1)
        (alert_id,) = await scheduled(pool, 1, in_s=0.6)
        alert = await alerts.get(pool, alert_id)
        assert alert is not None and alert.send_at is not None
        q = await channel.declare_queue(queues.expand, passive=True)
        deadline = time.monotonic() + 3
        while (message := await q.get(fail=False, no_ack=True)) is None:
            assert time.monotonic() < deadline, "not fired"
            await asyncio.sleep(0.02)
        late = time.time() - alert.send_at.timestamp()
        assert decode_expand(message.body).alert_id == alert_id
        assert 0 <= late < 1.0, late
    finally:
        await scheduler.stop()


class BrokerAwayAtFirst(Publisher):
    """A broker that refuses the first two publishes (a restart), then confirms."""

    refusals = 2

    async def publish(self, queue: str, body: bytes, message_id: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise ConnectionRefusedError("broker restarting")
        await super().publish(queue, body, message_id)


async def test_the_loop_outlasts_a_broker_away_and_fires_once_it_is_back(
    pool: Pool, channel: aio_pika.abc.AbstractChannel, queues: QueueNames
) -> None:
    """Passes that meet a refusing broker roll back (the alert stays `scheduled`); the loop
    keeps going and fires the alert, once, when the broker confirms again."""
    (alert_id,) = await scheduled(pool, 1)
    await make_due(pool)
    scheduler = Scheduler(pool, BrokerAwayAtFirst(channel, 5), queues, 0.05)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while (alert := await alerts.get(pool, alert_id)) and alert.status == "scheduled":
            assert time.monotonic() < deadline, "never fired"
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert [decode_expand(b).alert_id for b in await drain(channel, queues.expand)] == [alert_id]
