"""Per-device outcomes read back from the durable record (pushfan.outcome_record).

The record is one row per batch write: packed device ids grouped by outcome, the reasons of
refused pushes (pushfan.outcome_reasons), the attempt and the time it was recorded. This
module answers from those rows without a row per push:
- `lookup`: one device's outcome; PostgreSQL finds the rows holding its 4 bytes
  (`position`), Python checks the alignment.
- `page`: keyset pages of an alert's outcomes, cursor = (row id, index in the row).
- `stream`: every outcome of an alert through a server-side cursor, bounded memory.

A device has one outcome: the first recorded. A push sent again (a ledger loss, a sender
killed between the record and Redis) records the device twice; the later entries are
skipped. Both copies always sit in rows of the same shard (batch ids are
`alert:shard:...`), so a page looks for earlier copies in its shards' rows only; the stream
keeps a bitmap of the devices it has passed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pushfan.outcome_reasons import reason_at
from pushfan.outcome_record import OUTCOME_FIELDS, Executor, unpack_ids
from pushfan.progress import pack_ids

MAX_DEVICE_ID = 2**32 - 1  # ids are packed in 4 bytes
STREAM_PREFETCH = 50  # record rows per cursor fetch (a row holds up to 500 devices)
PAGE_ROWS = 50  # record rows read per round trip while filling a page

_COLUMNS = "id, batch_id, attempt, sizes, device_ids, reasons, reason_names, recorded_at"


@dataclass(frozen=True)
class DeviceOutcome:
    device_id: int
    outcome: str
    reason: str | None
    recorded_at: datetime
    attempts: int
    provider: str | None  # from the batch id; None for what the expander counted unsent
    app: str | None

    def doc(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "recorded_at": self.recorded_at.isoformat(),
            "attempts": self.attempts,
            "provider": self.provider,
            "app": self.app,
        }


def batch_parts(batch_id: str) -> tuple[str, str | None, str | None]:
    """(shard, provider, app) of a batch id `alert:shard:provider:app:seq`; the expander's
    rows of unsent devices (`alert:shard:cancelled`) have neither provider nor app."""
    parts = batch_id.split(":")
    shard = parts[1] if len(parts) > 1 else ""
    if len(parts) >= 5:
        return shard, parts[2], ":".join(parts[3:-1])
    return shard, None, None


def _outcome_of(sizes: Sequence[int], index: int) -> str:
    for name, size in zip(OUTCOME_FIELDS, sizes, strict=False):
        if index < size:
            return name
        index -= size
    raise IndexError(index)


def _entry(row: Any, ids: Sequence[int], index: int) -> DeviceOutcome:
    _, provider, app = batch_parts(row["batch_id"])
    return DeviceOutcome(
        device_id=ids[index],
        outcome=_outcome_of(row["sizes"], index),
        reason=reason_at(row["reasons"], row["reason_names"], index),
        recorded_at=row["recorded_at"],
        attempts=int(row["attempt"]) + 1,
        provider=provider,
        app=app,
    )


def _span(sizes: Sequence[int], outcome: str | None) -> tuple[int, int]:
    """The indexes [start, end) of a row's ids with `outcome` (all of them for None)."""
    if outcome is None:
        return 0, sum(sizes)
    at = OUTCOME_FIELDS.index(outcome)
    start = sum(sizes[:at])
    return start, start + (sizes[at] if at < len(sizes) else 0)


async def lookup(db: Executor, alert_id: uuid.UUID, device_id: int) -> DeviceOutcome | None:
    """The device's outcome for the alert, or None if none is recorded (yet)."""
    if not 0 <= device_id <= MAX_DEVICE_ID:
        return None
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM outcome_batches "
        "WHERE alert_id = $1 AND position($2::bytea IN device_ids) > 0 ORDER BY id",
        alert_id,
        pack_ids([device_id]),
    )
    for row in rows:  # the 4 bytes may also straddle two ids: check each match
        ids = unpack_ids(row["device_ids"])
        try:
            index = ids.index(device_id)
        except ValueError:
            continue
        return _entry(row, ids, index)
    return None


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: entry `index` of record row `row`."""

    row: int
    index: int

    def token(self) -> str:
        return f"{self.row}.{self.index}"

    @classmethod
    def parse(cls, token: str) -> Cursor | None:
        row, dot, index = token.partition(".")
        if not (dot and row.isdigit() and index.isdigit() and len(row) < 19 and len(index) < 6):
            return None
        return cls(int(row), int(index))


async def page(
    db: Executor,
    alert_id: uuid.UUID,
    outcome: str | None,
    after: Cursor | None,
    limit: int,
) -> tuple[list[DeviceOutcome], Cursor | None]:
    """Up to `limit` outcomes from `after` on, in record order, and the next page's cursor
    (None at the end). A page may hold fewer than `limit` when it skipped later copies of
    devices sent twice: follow the cursor until it is None."""
    start = after or Cursor(0, 0)
    found: list[tuple[int, DeviceOutcome]] = []  # (row id, entry)
    shards: set[str] = set()
    cursor: Cursor | None = start
    while cursor is not None and len(found) < limit:
        rows = await db.fetch(
            f"SELECT {_COLUMNS} FROM outcome_batches WHERE alert_id = $1 AND id >= $2 "
            "ORDER BY id LIMIT $3",
            alert_id,
            cursor.row,
            PAGE_ROWS,
        )
        first_index = cursor.index
        cursor = None
        for row in rows:
            skip = first_index if row["id"] == start.row else 0
            lo, hi = _span(row["sizes"], outcome)
            ids = unpack_ids(row["device_ids"])
            for index in range(max(lo, skip), hi):
                if len(found) == limit:
                    cursor = Cursor(row["id"], index)
                    break
                found.append((row["id"], _entry(row, ids, index)))
                shards.add(batch_parts(row["batch_id"])[0])
            if cursor is not None:
                break
        else:
            if len(rows) == PAGE_ROWS:
                cursor = Cursor(rows[-1]["id"] + 1, 0)
    first = await _first_rows(db, alert_id, shards, [e.device_id for _, e in found])
    items = [e for row, e in found if first.get(e.device_id, row) >= row]
    return items, cursor


async def _first_rows(
    db: Executor, alert_id: uuid.UUID, shards: set[str], devices: list[int]
) -> dict[int, int]:
    """For `devices`, the first row of the shards' rows that records each."""
    if not devices:
        return {}
    wanted = set(devices)
    first: dict[int, int] = {}
    rows = await db.fetch(
        "SELECT id, device_ids FROM outcome_batches "
        "WHERE alert_id = $1 AND split_part(batch_id, ':', 2) = ANY($2::text[]) ORDER BY id",
        alert_id,
        sorted(shards),
    )
    for row in rows:
        for device in wanted.intersection(unpack_ids(row["device_ids"])):
            first.setdefault(device, row["id"])
    return first


async def stream(
    conn: Executor, alert_id: uuid.UUID, outcome: str | None
) -> AsyncIterator[DeviceOutcome]:
    """Every outcome of the alert (or those of `outcome`), first record of a device only.
    `conn` is one connection inside a transaction (a server-side cursor). Memory: the rows of
    one fetch and a bitmap of the ids passed (one bit per id up to the largest)."""
    seen = bytearray()
    async for row in conn.cursor(
        f"SELECT {_COLUMNS} FROM outcome_batches WHERE alert_id = $1 ORDER BY id",
        alert_id,
        prefetch=STREAM_PREFETCH,
    ):
        ids = unpack_ids(row["device_ids"])
        lo, hi = _span(row["sizes"], outcome)
        for index in _first_seen(seen, ids, lo, hi):
            yield _entry(row, ids, index)


def _first_seen(seen: bytearray, ids: Sequence[int], lo: int, hi: int) -> Iterator[int]:
    """Mark every id of the row in `seen`; yield the indexes in [lo, hi) not seen before."""
    top = max(ids, default=-1) >> 3
    if top >= len(seen):
        seen.extend(bytes(top + 1 - len(seen)))
    for index, device in enumerate(ids):
        byte, mask = device >> 3, 0x80 >> (device & 7)
        if seen[byte] & mask:
            continue
        seen[byte] |= mask
        if lo <= index < hi:
            yield index
