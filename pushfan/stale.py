"""The stale-token policy: devices not seen for `device_stale_days` are deactivated.

In batches of `batch` rows, each its own short transaction that row-locks only the devices it
changes (`FOR UPDATE SKIP LOCKED`, oldest `last_seen` first through the partial index on
active devices): registrations and the workers' writes never wait on it for more than one
batch, and it skips rows they hold instead of waiting for them.
"""

from __future__ import annotations

import asyncio

import asyncpg

_BATCH_SQL = """
UPDATE devices SET active = false, deactivated_at = now(), updated_at = now()
WHERE id IN (
    SELECT id FROM devices
    WHERE active AND last_seen < now() - make_interval(days => $1::integer)
    ORDER BY last_seen
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
"""


async def deactivate_stale(
    pool: asyncpg.Pool, days: int, *, batch: int = 1_000, pause_s: float = 0.0
) -> int:
    """Deactivate every active device unseen for `days`; returns how many. `days` <= 0 is off."""
    if days <= 0:
        return 0
    total = 0
    while True:
        status = await pool.execute(_BATCH_SQL, days, batch)
        done = int(status.split()[-1])
        total += done
        if done < batch:
            return total
        if pause_s:
            await asyncio.sleep(pause_s)
