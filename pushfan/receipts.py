"""Receipts from phones: a device says it received, displayed or opened an alert.

One row per (alert, device, event), the first one kept: a replayed receipt changes nothing.
`counts` gives per event how many devices reported it, which the report turns into
confirmed-delivery and open rates.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

EVENTS = ("received", "displayed", "opened")
PLATFORMS = ("ios", "android", "web")


async def record(
    pool: asyncpg.Pool, alert_id: uuid.UUID, device_id: int, event: str, at: datetime
) -> bool:
    """Store the receipt; False if this device already reported this event of the alert."""
    status = await pool.execute(
        "INSERT INTO receipts (alert_id, device_id, event, at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        alert_id,
        device_id,
        event,
        at,
    )
    return status.endswith(" 1")


async def device_app(
    pool: asyncpg.Pool, app: str, device_id: int | None, token: str | None
) -> int | None:
    """The id of the app's device with this id or token (active or not), else None."""
    if device_id is not None:
        found = await pool.fetchval(
            "SELECT id FROM devices WHERE id = $1 AND app = $2", device_id, app
        )
    else:
        # The unique index is (app, platform, token): one probe per platform. An APNs token
        # is stored lower-case (api.models normalises it at registration).
        found = await pool.fetchval(
            "SELECT id FROM devices WHERE app = $1 AND platform = ANY($2::text[]) "
            "AND token = ANY($3::text[]) LIMIT 1",
            app,
            list(PLATFORMS),
            sorted({token or "", (token or "").lower()}),
        )
    return None if found is None else int(found)


async def counts(pool: asyncpg.Pool | asyncpg.Connection, alert_id: uuid.UUID) -> dict[str, int]:
    """Devices that reported each event, and `confirmed`: those that reported any."""
    rows = await pool.fetch(
        "SELECT event, count(*) AS n FROM receipts WHERE alert_id = $1 GROUP BY event", alert_id
    )
    found = dict.fromkeys(EVENTS, 0) | {r["event"]: int(r["n"]) for r in rows}
    found["confirmed"] = int(
        await pool.fetchval(
            "SELECT count(DISTINCT device_id) FROM receipts WHERE alert_id = $1", alert_id
        )
    )
    return found
