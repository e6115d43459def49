"""Follow-ups: a new alert to exactly the devices an earlier alert was delivered to.

The original must have finished, so its delivered set is final. `materialise` reads that
set from the original's outcome record once (pushfan.outcome_query.stream, first outcome of
a device wins) into `delivered_sets`, in one transaction that also records its size; a
second follow-up of the same original reuses it. The follow-up's audience names the
original (`AudienceFilter.delivered_of`, compiled by pushfan.audience_sql), and its
notification reuses the original's collapse id, so the phone replaces the original.
"""

from __future__ import annotations

import uuid

import asyncpg

from pushfan import outcome_query

CHUNK = 10_000  # ids per COPY


async def materialise(pool: asyncpg.Pool, alert_id: str) -> int:
    """The size of the alert's delivered set, written first if it is not yet."""
    key = uuid.UUID(alert_id)
    async with pool.acquire() as conn, conn.transaction():
        # A concurrent first call waits here on the primary key until the other commits.
        claimed = await conn.fetchval(
            "INSERT INTO delivered_set_sizes (alert_id, devices) VALUES ($1, 0) "
            "ON CONFLICT DO NOTHING RETURNING alert_id",
            key,
        )
        if claimed is None:
            size: int = await conn.fetchval(
                "SELECT devices FROM delivered_set_sizes WHERE alert_id = $1", key
            )
            return size
        total = 0
        chunk: list[tuple[uuid.UUID, int]] = []
        async for entry in outcome_query.stream(conn, key, "delivered"):
            chunk.append((key, entry.device_id))
            if len(chunk) >= CHUNK:
                total += await _copy(conn, chunk)
        total += await _copy(conn, chunk)
        await conn.execute(
            "UPDATE delivered_set_sizes SET devices = $2 WHERE alert_id = $1", key, total
        )
        return total


async def _copy(conn: asyncpg.Connection, chunk: list[tuple[uuid.UUID, int]]) -> int:
    if not chunk:
        return 0
    await conn.copy_records_to_table(
        "delivered_sets", records=chunk, columns=["alert_id", "device_id"]
    )
    written = len(chunk)
    chunk.clear()
    return written
