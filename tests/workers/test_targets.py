"""A targeted push's expansion: its ids, tokens and user ids resolved to active devices once
each, batched like a shard, the same batches on redelivery."""

from __future__ import annotations

import aio_pika

from pushfan import alerts, registry
from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.messages import (
    AudienceFilter,
    ExpandTask,
    TargetSpec,
    TokenTarget,
    UserTarget,
    decode_batch,
)
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.workers.expander import Expander
from pushfan.workers.targets import resolve
from tests.fixtures.services import drain, seeded


async def test_expansion_resolves_ids_tokens_and_users_once_each_and_only_active(
    pool: Pool,
    progress: Progress,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    cancels: CancelWatch,
) -> None:
    """Given devices named by id, by token and by user (with overlaps and a dead one),
    when the targets task is expanded twice (a redelivery),
    then each active device is batched once per expansion with the same batch ids, and
    the audience is counted once."""
    rows = await seeded(pool, 40)
    await registry.deactivate(pool, [rows[1]["id"]])
    spec = TargetSpec(
        device_ids=[rows[0]["id"], rows[1]["id"], rows[2]["id"], 10**12],
        tokens=[TokenTarget(rows[2]["platform"], rows[2]["app"], rows[2]["token"])]
        + [TokenTarget(r["platform"], r["app"], r["token"]) for r in rows[3:30]],
        user_ids=[UserTarget(rows[30]["app"], rows[30]["user_id"]), UserTarget("beta", "none")],
    )
    expected = {rows[0]["id"], rows[2]["id"], *(r["id"] for r in rows[3:31])}
    assert [t.id for t in await resolve(pool, spec, page_size=7)] == sorted(expected)

    alert, _ = await alerts.create(
        pool, alerts.AlertIn("t", "b", {}, AudienceFilter(), 600, "high", spec), None, "test"
    )
    task = ExpandTask(
        alert.id, "targets", AudienceFilter(), alert.notification(), shard=0, targets=spec
    )
    names = QueueNames.for_prefix(settings.queue_prefix)
    small = settings.model_copy(update={"batch_size": 5, "expander_page_size": 7})
    expander = Expander(small, pool, progress, Publisher(channel, 5), cancels)
    runs = []
    for _ in range(2):
        counts = await expander.expand_targets(task)
        batches = [decode_batch(b) for q in names.send.values() for b in await drain(channel, q)]
        runs.append(batches)
        assert counts.audience == len(expected) and counts.expanded
    first, second = runs
    ids = [d for b in first for d in b.device_ids]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert max(len(b.device_ids) for b in first) <= 5
    assert {b.batch_id for b in first} == {b.batch_id for b in second}
    # Stages live in Redis; the row is written again only when the alert ends.
    assert (await expander.progress.counts(alert.id)).stage == "sending"
    assert (await alerts.get(pool, alert.id)).status == "queued"  # type: ignore[union-attr]
