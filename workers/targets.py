"""The targets of a targeted push (POST /v1/notifications): its explicit device ids, tokens
and user ids resolved to active devices (Expander.expand_targets batches them like a shard).

Targets are resolved in pages of `expander_page_size` (one indexed query each),
de-duplicated (a device named by id and by token gets one push) and sent in id order, so a
re-expansion makes the same batch ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import asyncpg

from pushfan import registry
from pushfan.messages import TargetSpec

T = TypeVar("T")

# $apps: the apps the push may reach (its key's), NULL for every app.
_BY_ID = f"""
SELECT {registry.TARGET_COLUMNS} FROM devices
WHERE active AND id = ANY($1::bigint[]) AND ($2::text[] IS NULL OR app = ANY($2))
"""
_BY_TOKEN = f"""
SELECT d.id, d.platform, d.app, {registry.SEND_TOKEN.format("d.")} AS token,
       d.apns_environment, d.locale FROM devices d
JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(platform, app, token)
  USING (platform, app, token)
WHERE d.active AND ($4::text[] IS NULL OR d.app = ANY($4))
"""
_BY_USER = f"""
SELECT d.id, d.platform, d.app, {registry.SEND_TOKEN.format("d.")} AS token,
       d.apns_environment, d.locale FROM devices d
JOIN unnest($1::text[], $2::text[]) AS u(app, user_id) USING (app, user_id)
WHERE d.active AND ($3::text[] IS NULL OR d.app = ANY($3))
"""


def pages(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def resolve(
    pool: asyncpg.Pool, spec: TargetSpec, page_size: int, apps: Sequence[str] = ()
) -> list[registry.Target]:
    """The active devices the spec names, each once, in id order; only of `apps` if given
    (a targeted push reaches only the apps of the key that sent it)."""
    only = list(apps) or None
    found: dict[int, registry.Target] = {}

    def keep(rows: list[asyncpg.Record]) -> None:
        for r in rows:
            found[r["id"]] = registry.target_of(r)

    for ids in pages(spec.device_ids, page_size):
        keep(await pool.fetch(_BY_ID, list(ids), only))
    for tokens in pages(spec.tokens, page_size):
        columns = ([t.platform for t in tokens], [t.app for t in tokens], [t.token for t in tokens])
        keep(await pool.fetch(_BY_TOKEN, *columns, only))
    for users in pages(spec.user_ids, page_size):
        pairs = ([u.app for u in users], [u.user_id for u in users])
        keep(await pool.fetch(_BY_USER, *pairs, only))
    return [found[device_id] for device_id in sorted(found)]
