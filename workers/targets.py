"""Expansion of a targeted push (POST /v1/notifications): its explicit device ids, tokens and
user ids resolved to active devices, then batched exactly like a shard of a global alert.

A targeted push is planned as one shard (0), recorded as it ends, so the progress ledger
counts its audience once however often the message is redelivered. Targets are resolved in
pages of `expander_page_size` (one indexed query each), de-duplicated (a device named by id
and by token gets one push) and sent in id order, so a re-expansion makes the same batch ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from pushfan import metrics, registry
from pushfan.messages import ExpandTask, TargetSpec
from pushfan.progress import Counts
from pushfan.workers.batching import Batcher

if TYPE_CHECKING:
    from pushfan.workers.expander import Expander

T = TypeVar("T")
SHARD = 0

_BY_ID = """
SELECT id, platform, app, token FROM devices WHERE active AND id = ANY($1::bigint[])
"""
_BY_TOKEN = """
SELECT d.id, d.platform, d.app, d.token FROM devices d
JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(platform, app, token)
  USING (platform, app, token)
WHERE d.active
"""
_BY_USER = """
SELECT d.id, d.platform, d.app, d.token FROM devices d
JOIN unnest($1::text[], $2::text[]) AS u(app, user_id) USING (app, user_id)
WHERE d.active
"""


def _pages(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def resolve(pool: asyncpg.Pool, spec: TargetSpec, page_size: int) -> list[registry.Target]:
    """The active devices the spec names, each once, in id order."""
    found: dict[int, registry.Target] = {}

    def keep(rows: list[asyncpg.Record]) -> None:
        for r in rows:
            found[r["id"]] = registry.Target(r["id"], r["platform"], r["app"], r["token"])

    for ids in _pages(spec.device_ids, page_size):
        keep(await pool.fetch(_BY_ID, list(ids)))
    for tokens in _pages(spec.tokens, page_size):
        columns = ([t.platform for t in tokens], [t.app for t in tokens], [t.token for t in tokens])
        keep(await pool.fetch(_BY_TOKEN, *columns))
    for users in _pages(spec.user_ids, page_size):
        keep(await pool.fetch(_BY_USER, [u.app for u in users], [u.user_id for u in users]))
    return [found[device_id] for device_id in sorted(found)]


async def expand_targets(expander: Expander, task: ExpandTask) -> Counts:
    """Publish the send batches of a targeted push; returns the counts after its one shard."""
    assert task.targets is not None, "a 'targets' task carries its targets"
    page_size = expander.settings.expander_page_size
    targets = await resolve(expander.pool, task.targets, page_size)
    batcher = Batcher(expander.publisher, expander.queues, expander.settings.batch_size, task)
    async with batcher:
        for page in _pages(targets, page_size):
            await expander.place(batcher, task, page)
    metrics.EXPANDED_TARGETS.inc(len(targets))
    metrics.EXPANDED_SHARDS.inc()
    # The plan (one shard) is recorded with the shard's audience, in one round trip.
    return await expander.progress.shard_done(task.alert_id, SHARD, len(targets), shards_total=1)
