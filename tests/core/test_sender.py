"""The sender's bookkeeping against the real Redis and PostgreSQL, with an in-memory
provider standing in for APNs (the real clients are covered end to end with the simulators)."""

from __future__ import annotations

import time

import pytest

from pushfan import alerts, registry
from pushfan.db import Pool
from pushfan.messages import AudienceFilter, Notification, SendBatch
from pushfan.progress import Progress
from pushfan.seed import seed_devices
from workers.providers.base import SendResult
from workers.sender import Sender


class ScriptedProvider:
    """Answers by device id: ids in `dead` are invalid, in `flaky` transient, else delivered."""

    name = "apns"

    def __init__(self, dead: set[int] = frozenset(), flaky: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.dead, self.flaky = dead, flaky
        self.sent: list[int] = []

    async def send(
        self, notification: Notification, device_ids: list[int], tokens: list[str]
    ) -> SendResult:
        self.sent += device_ids
        result = SendResult()
        for device_id in device_ids:
            if device_id in self.dead:
                result.invalid.append(device_id)
            elif device_id in self.flaky:
                result.transient.append(device_id)
            else:
                result.delivered.append(device_id)
        return result

    async def close(self) -> None:
        return None


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
        "apns",
        "alpha",
        notification or alert.notification(),
        ids,
        [f"{i:064x}" for i in ids],
    )


async def test_a_redelivered_batch_sends_nothing_twice(
    pool: Pool,
    progress: Progress,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    provider = ScriptedProvider()
    sender = Sender("apns", {"alpha": provider}, pool, progress)  # type: ignore[dict-item]
    await sender.process(batch_for(alert, ids[:6]))
    await sender.process(batch_for(alert, ids[:6]))  # redelivered
    await sender.process(batch_for(alert, ids))
    assert sorted(provider.sent) == ids  # each device once
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done" and done.delivered == 10


async def test_dead_tokens_deactivate_devices_and_counts_add_up(
    pool: Pool,
    progress: Progress,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    provider = ScriptedProvider(dead={2, 3}, flaky={4})
    sender = Sender("apns", {"alpha": provider}, pool, progress)  # type: ignore[dict-item]
    await sender.process(batch_for(alert, ids))
    inactive = await pool.fetch("SELECT id FROM devices WHERE NOT active ORDER BY id")
    assert [r["id"] for r in inactive] == [2, 3]
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done"
    assert (done.delivered, done.invalid, done.failed) == (7, 2, 1)
    assert done.delivered + done.invalid + done.failed == done.audience == 10
    counts = await progress.counts(alert.id)
    assert counts.retryable == 1  # the transient answer is tallied, not counted delivered
    streamed = [
        t.id
        async for page in registry.stream_targets(pool, 1, 11, AudienceFilter(), 100)
        for t in page
    ]
    assert 2 not in streamed and 3 not in streamed  # later alerts skip dead devices


async def test_an_expired_batch_is_never_sent(
    pool: Pool,
    progress: Progress,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    provider = ScriptedProvider()
    sender = Sender("apns", {"alpha": provider}, pool, progress)  # type: ignore[dict-item]
    stale = Notification(title="t", body="b", expires_at=int(time.time()) - 1, collapse_id=alert.id)
    await sender.process(batch_for(alert, ids, stale))
    assert provider.sent == []
    done = await alerts.get(pool, alert.id)
    assert done is not None and done.status == "done" and done.expired == 10


async def test_an_app_without_credentials_counts_failed(
    pool: Pool,
    progress: Progress,
    alert_with_devices: tuple[alerts.Alert, list[int]],
) -> None:
    alert, ids = alert_with_devices
    sender = Sender("apns", {}, pool, progress)
    await sender.process(batch_for(alert, ids))
    assert (await progress.counts(alert.id)).failed == 10
