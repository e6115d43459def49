"""The outcome record's retention: rows of alerts finished more than `outcome_retention_days`
ago are deleted, alert by alert, in batches of `batch` rows, each its own short statement
(the record's index on (alert_id, id) finds them), and so are their delivered sets
(pushfan.follow_up). Unfinished alerts keep their rows: the ledger's rebuild needs them.
The alerts keep their final counts.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

_EXPIRED_ALERTS = """
SELECT a.id FROM alerts a
WHERE a.finished_at < now() - make_interval(days => $1::integer)
  AND (EXISTS (SELECT 1 FROM outcome_batches o WHERE o.alert_id = a.id)
       OR EXISTS (SELECT 1 FROM delivered_set_sizes d WHERE d.alert_id = a.id))
ORDER BY a.finished_at
"""

_BATCHES = (
    """
    DELETE FROM outcome_batches WHERE id IN (
        SELECT id FROM outcome_batches WHERE alert_id = $1 ORDER BY id LIMIT $2
    )
    """,
    """
    DELETE FROM delivered_sets WHERE alert_id = $1 AND device_id IN (
        SELECT device_id FROM delivered_sets WHERE alert_id = $1 ORDER BY device_id LIMIT $2
    )
    """,
)


def expired(finished_at: datetime | None, days: int, now: datetime | None = None) -> bool:
    """Whether an alert's outcomes are past retention (and so deleted, or about to be)."""
    if days <= 0 or finished_at is None:
        return False
    return finished_at < (now or datetime.now(UTC)) - timedelta(days=days)


async def prune(pool: asyncpg.Pool, days: int, *, batch: int = 1_000, pause_s: float = 0.0) -> int:
    """Delete the record rows of alerts finished over `days` ago; returns how many rows.
    `days` <= 0 keeps everything."""
    if days <= 0:
        return 0
    total = 0
    for row in await pool.fetch(_EXPIRED_ALERTS, days):
        total += await _prune_alert(pool, row["id"], batch, pause_s)
    return total


async def _prune_alert(pool: asyncpg.Pool, alert_id: uuid.UUID, batch: int, pause_s: float) -> int:
    """Delete the alert's record rows (counted) and its delivered set, a batch at a time."""
    counted = 0
    for n, statement in enumerate(_BATCHES):
        while True:
            done = int((await pool.execute(statement, alert_id, batch)).split()[-1])
            counted += done if n == 0 else 0
            if done < batch:
                break
            if pause_s:
                await asyncio.sleep(pause_s)
    await pool.execute("DELETE FROM delivered_set_sizes WHERE alert_id = $1", alert_id)
    return counted
