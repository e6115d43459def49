"""Saved segments: a named audience expression (pushfan.audience), usable by name in alerts.

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
    """A segment of that name exists; delete it first."""


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
    name: str,
    description: str,
    expression: dict[str, Any],
    created_by: str | None,
) -> Segment:
    row = await pool.fetchrow(
        """
        INSERT INTO segments (name, description, audience, created_by)
        VALUES ($1, $2, $3::jsonb, $4)
        ON CONFLICT (name) DO NOTHING
        RETURNING *
        """,
        name,
        description,
        orjson.dumps(expression).decode(),
        created_by,
    )
    if row is None:
        raise SegmentExists(name)
    return _from_row(row)


async def get(pool: asyncpg.Pool | asyncpg.Connection, name: str) -> Segment | None:
    row = await pool.fetchrow("SELECT * FROM segments WHERE name = $1", name)
    return _from_row(row) if row else None


async def all_segments(pool: asyncpg.Pool, limit: int = 1_000) -> list[Segment]:
    rows = await pool.fetch("SELECT * FROM segments ORDER BY name LIMIT $1", limit)
    return [_from_row(r) for r in rows]


async def delete(pool: asyncpg.Pool, name: str) -> bool:
    status = await pool.execute("DELETE FROM segments WHERE name = $1", name)
    return status.endswith(" 1")
