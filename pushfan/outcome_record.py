"""The durable record of an alert's progress in PostgreSQL, from which its Redis state is
rebuilt when Redis lost it (pushfan.ledger_epoch).

Redis stays the fast path (dedup bitmap, counters, stage); this record is written first, so
it holds everything Redis was ever told, and more if a Redis write failed after it:
- `write_outcomes`: one row per batch of final outcomes (table `outcome_batches`), the same
  packed ids and per-outcome sizes the Redis script takes, so a batch costs one INSERT of
  two small binary values, not a row per push. Committed before the batch is acked.
- `record_plan` / `record_shard`: the shard plan (first wins) and each shard's audience.
- `rebuild`: an alert's bitmap and counters from its rows, first outcome of a device wins
  (as in Redis); devices recorded more than once are pushes that were sent again.
"""

from __future__ import annotations

import sys
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pushfan.outcomes import FINAL_OUTCOMES

# A pool or one connection (inside a transaction): anything with execute/fetch/fetchrow.
Executor = Any

_INSERT = """
INSERT INTO outcome_batches
    (alert_id, batch_id, attempt, sizes, device_ids, retryable, reasons, reason_names)
VALUES ($1, $2, $3, $4::integer[], $5, $6, $7, $8::text[])
"""


async def write_outcomes(
    db: Executor,
    alert_id: str,
    batch_id: str,
    attempt: int,
    sizes: Sequence[int],
    packed_ids: bytes,
    retryable: int = 0,
    reasons: tuple[bytes | None, list[str] | None] = (None, None),
) -> None:
    """Record one batch's final outcomes: `sizes` per outcome (FINAL_OUTCOMES order) and the
    ids grouped in that order, packed (pushfan.progress.outcome_args makes both), with their
    reasons if any (pushfan.outcome_reasons.reason_args). Nothing to record (no final
    outcome, nothing retried) writes nothing."""
    if not packed_ids and not retryable:
        return
    await db.execute(
        _INSERT,
        uuid.UUID(alert_id),
        batch_id,
        attempt,
        list(sizes),
        packed_ids,
        retryable,
        *reasons,
    )


async def record_plan(
    db: Executor, alert_id: str, lo: int, hi: int, shards: int
) -> tuple[int, int, int]:
    """Record the alert's shard plan once; returns the plan recorded first."""
    row = await db.fetchrow(
        """
        UPDATE alerts SET plan_lo = COALESCE(plan_lo, $2), plan_hi = COALESCE(plan_hi, $3),
                          shards_total = COALESCE(shards_total, $4)
        WHERE id = $1
        RETURNING plan_lo, plan_hi, shards_total
        """,
        uuid.UUID(alert_id),
        lo,
        hi,
        shards,
    )
    if row is None:  # an alert unknown here (a test's bare task): the caller's plan stands
        return lo, hi, shards
    return int(row["plan_lo"]), int(row["plan_hi"]), int(row["shards_total"])


async def record_shard(
    db: Executor, alert_id: str, shard: int, audience: int, *, shards_total: int | None = None
) -> None:
    """Record a shard's audience once (and, for a one-shard plan, the plan's size)."""
    key = uuid.UUID(alert_id)
    if shards_total is not None:
        await db.execute(
            "UPDATE alerts SET shards_total = COALESCE(shards_total, $2) WHERE id = $1",
            key,
            shards_total,
        )
    await db.execute(
        """
        INSERT INTO alert_shards (alert_id, shard, audience)
        SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM alerts WHERE id = $1)
        ON CONFLICT DO NOTHING
        """,
        key,
        shard,
        audience,
    )


OUTCOME_FIELDS = [str(o) for o in FINAL_OUTCOMES]  # the order of `sizes`

_UINT32 = "I" if array("I").itemsize == 4 else "L"


def unpack_ids(packed: bytes) -> array[int]:
    """Device ids packed 4 bytes each, little-endian (the Lua scripts' layout)."""
    ids = array(_UINT32, packed)
    if sys.byteorder == "big":
        ids.byteswap()
    return ids


@dataclass(frozen=True)
class Rebuilt:
    """An alert's Redis state as its record has it."""

    bitmap: bytes  # Redis bitmap layout: bit n (most significant first) = device id n
    counts: dict[str, int]  # every counter of pushfan.progress.COUNTERS that is known
    shards: dict[int, int]  # shard -> audience
    plan: tuple[int, int] | None  # (lo, hi) once planned
    resent: int  # devices recorded more than once


async def rebuild(db: Executor, alert_id: str) -> Rebuilt:
    key = uuid.UUID(alert_id)
    rows = await db.fetch(
        "SELECT sizes, device_ids, retryable FROM outcome_batches WHERE alert_id = $1 ORDER BY id",
        key,
    )
    counts = dict.fromkeys(OUTCOME_FIELDS, 0)
    retryable = 0
    seen = bytearray()  # Redis bitmap layout, grown to the largest id met
    resent = 0
    for row in rows:
        retryable += row["retryable"]
        ids = unpack_ids(row["device_ids"])
        start = 0
        for outcome, size in zip(OUTCOME_FIELDS, row["sizes"], strict=False):
            for device in ids[start : start + size]:
                byte, mask = device >> 3, 0x80 >> (device & 7)
                if byte >= len(seen):
                    seen.extend(bytes(byte + 1 - len(seen)))
                if seen[byte] & mask:  # the first record of a device wins
                    resent += 1
                else:
                    seen[byte] |= mask
                    counts[outcome] += 1
            start += size
    bitmap = bytes(seen)
    shards = {
        int(r["shard"]): int(r["audience"])
        for r in await db.fetch("SELECT shard, audience FROM alert_shards WHERE alert_id = $1", key)
    }
    plan_row = await db.fetchrow(
        "SELECT plan_lo, plan_hi, shards_total FROM alerts WHERE id = $1", key
    )
    plan = None
    all_counts: dict[str, int] = {**counts, "retryable": retryable}
    if plan_row is not None and plan_row["shards_total"] is not None:
        all_counts["shards_total"] = int(plan_row["shards_total"])
        if plan_row["plan_lo"] is not None:
            plan = (int(plan_row["plan_lo"]), int(plan_row["plan_hi"]))
    all_counts["audience"] = sum(shards.values())
    all_counts["shards_done"] = len(shards)
    return Rebuilt(bitmap, all_counts, shards, plan, resent)
