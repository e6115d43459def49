"""A follow-up reaches exactly the devices its original was delivered to: through the real
API, the durable record, the expander, PostgreSQL and RabbitMQ (issue 18)."""

from __future__ import annotations

import uuid

import aio_pika
import httpx

from pushfan import alerts, follow_up, outcome_record
from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.messages import decode_batch, decode_expand
from pushfan.outcome_reasons import reason_args
from pushfan.outcomes import Outcome
from pushfan.progress import Progress, outcome_args
from pushfan.publisher import Publisher
from pushfan.seed import seed_devices
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.expander import Expander
from tests.fixtures.services import drain

DEVICES = 2_345
FOLLOW_UP = {"title": "Correction", "body": "ignore the previous alert"}


async def _finished_original(api: httpx.AsyncClient, key: dict[str, str], pool: Pool) -> str:
    """An original whose record has 10% dead tokens, a cancelled tail (ids over 2,000) and
    one device sent twice (delivered first, then invalid: it counts delivered)."""
    response = await api.post("/v1/alerts", json={"title": "t", "body": "b"}, headers=key)
    assert response.status_code == 202, response.text
    alert = str(response.json()["id"])
    for n, lo in enumerate(range(1, 2_001, 500)):
        ids = range(lo, lo + 500)
        outcomes = {
            Outcome.DELIVERED: [i for i in ids if i % 10],
            Outcome.INVALID: [i for i in ids if not i % 10],
        }
        sizes, packed = outcome_args(outcomes)
        reasons = reason_args(outcomes, dict.fromkeys(outcomes[Outcome.INVALID], "Unregistered"))
        batch_id = f"{alert}:{(lo - 1) // 1000}:apns:alpha:{n}"
        await outcome_record.write_outcomes(
            pool, alert, batch_id, 0, sizes, packed, reasons=reasons
        )
    for shard, lo, hi in ((2, 2_001, DEVICES + 1), (0, 7, 8)):
        sizes, packed = outcome_args(
            {Outcome.CANCELLED if shard else Outcome.INVALID: list(range(lo, hi))}
        )
        await outcome_record.write_outcomes(
            pool, alert, f"{alert}:{shard}:cancelled", 0, sizes, packed
        )
    await pool.execute(
        "UPDATE alerts SET status = 'cancelled', finished_at = now() WHERE id = $1",
        uuid.UUID(alert),
    )
    return alert


async def test_a_follow_up_reaches_exactly_the_delivered_set_under_the_same_collapse_id(
    api: httpx.AsyncClient,
    sender_key: dict[str, str],
    settings: Settings,
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    cancels: CancelWatch,
) -> None:
    async with pool.acquire() as conn:
        await seed_devices(conn, DEVICES, apps=["alpha"])
    original = await _finished_original(api, sender_key, pool)
    names = QueueNames.for_prefix(settings.queue_prefix)
    await drain(channel, names.expand)  # the original's plan: never expanded here

    response = await api.post(
        f"/v1/alerts/{original}/follow-up", json=FOLLOW_UP, headers=sender_key
    )
    assert response.status_code == 202, response.text
    small = settings.model_copy(update={"shard_size": 1_000, "expander_page_size": 300})
    expander = Expander(small, pool, progress, Publisher(channel, 5), cancels)
    [plan] = [decode_expand(b) for b in await drain(channel, names.expand)]
    await expander.plan(plan)
    for shard in [decode_expand(b) for b in await drain(channel, names.expand)]:
        await expander.expand_shard(shard)
    sent = [decode_batch(b) for q in names.send.values() for b in await drain(channel, q)]

    delivered = [i for i in range(1, 2_001) if i % 10]
    assert sorted(d for b in sent for d in b.device_ids) == delivered
    assert {b.notification.collapse_id for b in sent} == {original}
    assert {b.notification.title for b in sent} == {"Correction"}
    assert (await progress.counts(response.json()["id"])).audience == len(delivered)


async def test_a_follow_up_needs_a_finished_original(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    running = (await api.post("/v1/alerts", json=FOLLOW_UP, headers=sender_key)).json()["id"]
    url = f"/v1/alerts/{running}/follow-up"
    assert (await api.post(url, json=FOLLOW_UP, headers=sender_key)).status_code == 409
    bad = await api.post(url, json={**FOLLOW_UP, "audience": {}}, headers=sender_key)
    assert bad.status_code == 422  # the audience is the original's, never chosen


async def test_the_delivered_set_is_made_once(
    api: httpx.AsyncClient, sender_key: dict[str, str], pool: Pool
) -> None:
    original = await _finished_original(api, sender_key, pool)
    assert await follow_up.materialise(pool, original) == 1_800
    assert await follow_up.materialise(pool, original) == 1_800
    assert await pool.fetchval("SELECT count(*) FROM delivered_sets") == 1_800
    follow = await alerts.get(pool, original)
    assert follow is not None and follow.notification().collapse_id == original
