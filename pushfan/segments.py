"""Saved segments: a named audience expression (pushfan.audience), usable by name in alerts.

Names are per owner (the owner of the API key that saved it): every key of the owner sees
and uses its segments, no other owner does. The dashboard, whose admins see every owner's
alerts, looks a name up across owners (`owner=None`) and refuses an ambiguous one.

An alert copies the expression when it is created, so deleting or re-creating a segment
never changes an alert already queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson


class SegmentExists(Exception):
    """The owner has a segment of that name; delete it first."""


class Ambiguous(Exception):
    """Several owners have a segment of that name (a lookup across owners)."""


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    filter: dict[str, Any]
    created_at: datetime


def _from_row(row: asyncpg.Record) -> Segment:
    return Segment(
        row["name"], row["description"], orjson.loads(row["audience"]), row["created_at"]
    )


async def create(
    pool: asyncpg.Pool,
    owner: str,
    name: str,
    description: str,
    expression: dict[str, Any],
    created_by: str | None,
) -> Segment:
    row = await pool.fetchrow(
        """
        INSERT INTO segments (owner, name, description, audience, created_by)
        VALUES ($1, $2, $3, $4::jsonb, $5)
        ON CONFLICT (owner, name) DO NOTHING
        RETURNING *
        """,
        owner,
        name,
        description,
        orjson.dumps(expression).decode(),
        created_by,
    )
    if row is None:
        raise SegmentExists(name)
    return _from_row(row)


async def get(
    pool: asyncpg.Pool | asyncpg.Connection, owner: str | None, name: str
) -> Segment | None:
    """The owner's segment of that name; with owner None, the one segment of that name of
    any owner (Ambiguous if several)."""
    rows = await pool.fetch(
        "SELECT * FROM segments WHERE name = $2 AND ($1::text IS NULL OR owner = $1) LIMIT 2",
        owner,
        name,
    )
    if len(rows) > 1:
        raise Ambiguous(name)
    return _from_row(rows[0]) if rows else None


async def all_segments(pool: asyncpg.Pool, owner: str, limit: int = 1_000) -> list[Segment]:
    rows = await pool.fetch(
        "SELECT * FROM segments WHERE owner = $1 ORDER BY name LIMIT $2", owner, limit
    )
    return [_from_row(r) for r in rows]


async def delete(pool: asyncpg.Pool, owner: str, name: str) -> bool:
    status = await pool.execute("DELETE FROM segments WHERE owner = $1 AND name = $2", owner, name)
    return status.endswith(" 1")
