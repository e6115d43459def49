"""The alert store in PostgreSQL: create idempotently, read, and move through its statuses.

The row holds what must outlive Redis: the request, `queued` until the alert ends, then
`done` (or `cancelled`) with the final counts. While it runs, its stage (expanding, sending)
and live counts are in Redis (pushfan.progress, `Counts.stage`), so the workers write this
table once per alert, when it ends, not at every stage.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import orjson

from pushfan import outcome_record
from pushfan.apikeys import DEFAULT_OWNER
from pushfan.messages import AudienceFilter, Canary, Extras, Notification, TargetSpec
from pushfan.progress import Counts


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""


def audience_doc(audience: AudienceFilter, *, sort: bool = False) -> dict[str, Any]:
    """The audience as stored: the three list filters always, the rest when set (so the
    request hash of an alert that uses none of them is what it always was)."""
    doc: dict[str, Any] = {
        name: sorted(value) if sort else list(value)
        for name, value in (
            ("platforms", audience.platforms),
            ("apps", audience.apps),
            ("tags", audience.tags),
        )
    }
    for name, value in msgspec.structs.asdict(audience).items():
        if name not in doc and name != "as_of" and value:
            doc[name] = value
    return doc


@dataclass(frozen=True)
class AlertIn:
    title: str
    body: str
    data: dict[str, str]
    audience: AudienceFilter
    ttl_s: int
    priority: str
    targets: TargetSpec | None = None  # set for a targeted push (kind 'targeted')
    extras: Extras | None = None  # everything beyond title, body and data (pushfan.content)
    send_at: datetime | None = None  # stored `scheduled`; the workers' scheduler fires it
    canary: Canary | None = None  # sent first, judged, then the rest (pushfan.canary)

    @property
    def kind(self) -> str:
        return "global" if self.targets is None else "targeted"

    def request_hash(self) -> str:
        doc = {
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "audience": audience_doc(self.audience, sort=True),
            "ttl_s": self.ttl_s,
            "priority": self.priority,
        }
        if self.targets is not None:
            doc["targets"] = msgspec.to_builtins(self.targets)
        if self.extras is not None:
            doc["extras"] = msgspec.to_builtins(self.extras)
        if self.send_at is not None:
            doc["send_at"] = self.send_at.timestamp()
        if self.canary is not None:
            doc["canary"] = msgspec.to_builtins(self.canary)
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Alert:
    id: str
    title: str
    body: str
    data: dict[str, str]
    audience_filter: AudienceFilter
    ttl_s: int
    priority: str
    status: str
    audience: int | None
    delivered: int
    invalid: int
    failed: int
    expired: int
    cancelled: int
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    kind: str = "global"
    targets: TargetSpec | None = None
    owner: str = DEFAULT_OWNER  # the owner of the key that made it, or 'dashboard'
    recoveries: int = 0  # times Redis lost this alert's state while it ran (rebuilt each time)
    last_recovery_at: datetime | None = None
    resent: int | None = None  # pushes the record shows sent twice; set when it finished
    extras: Extras | None = None
    send_at: datetime | None = None
    fired_at: datetime | None = None  # when the scheduler queued it (scheduled alerts)
    paused_reason: str | None = None  # why it paused itself (pushfan.pausing), while paused
    canary: Canary | None = None

    def notification(self) -> Notification:
        return Notification(
            title=self.title,
            body=self.body,
            data=self.data,
            priority="high" if self.priority == "high" else "normal",
            expires_at=int(self.expires_at.timestamp()),
            collapse_id=self.extras.collapse_id
            if self.extras and self.extras.collapse_id
            else self.id,
            extras=self.extras,
            alert_id=self.id,
        )


def _from_row(row: asyncpg.Record) -> Alert:
    audience_filter: dict[str, Any] = orjson.loads(row["audience_filter"])
    return Alert(
        id=str(row["id"]),
        title=row["title"],
        body=row["body"],
        data=orjson.loads(row["data"]),
        audience_filter=AudienceFilter(**audience_filter),
        ttl_s=row["ttl_s"],
        priority=row["priority"],
        status=row["status"],
        audience=row["audience"],
        delivered=row["delivered"],
        invalid=row["invalid"],
        failed=row["failed"],
        expired=row["expired"],
        cancelled=row["cancelled"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        finished_at=row["finished_at"],
        kind=row["kind"],
        targets=None
        if row["targets"] is None
        else msgspec.json.decode(row["targets"], type=TargetSpec),
        owner=row["owner"],
        recoveries=row["recoveries"],
        last_recovery_at=row["last_recovery_at"],
        resent=row["resent"],
        extras=_extras(row["content"]),
        send_at=row["send_at"],
        fired_at=row["fired_at"],
        paused_reason=row["paused_reason"],
        canary=None if row["canary"] is None else msgspec.json.decode(row["canary"], type=Canary),
    )


def _extras(content: str) -> Extras | None:
    extras = msgspec.json.decode(content, type=Extras)
    return None if extras == Extras() else extras


async def create(
    pool: asyncpg.Pool,
    alert: AlertIn,
    idempotency_key: str | None,
    created_by: str | None,
    owner: str = DEFAULT_OWNER,
) -> tuple[Alert, bool]:
    """Insert the alert, or return the one `created_by` already made with this key;
    (alert, created). Idempotency keys are scoped to their `created_by`."""
    request_hash = alert.request_hash()
    audience_json = orjson.dumps(audience_doc(alert.audience)).decode()
    row = await pool.fetchrow(
        """
        INSERT INTO alerts (id, idempotency_key, request_hash, title, body, data,
                            audience_filter, ttl_s, priority, created_by, expires_at,
                            kind, targets, owner, content, send_at, status, canary)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::integer, $9, $10,
                coalesce($15, now()) + make_interval(secs => $8::integer), $11, $12::jsonb,
                $13, $14::jsonb, $15,
                CASE WHEN $15::timestamptz IS NULL THEN 'queued' ELSE 'scheduled' END,
                $16::jsonb)
        ON CONFLICT (created_by, idempotency_key) DO NOTHING
        RETURNING *
        """,
        uuid.uuid4(),
        idempotency_key,
        request_hash,
        alert.title,
        alert.body,
        orjson.dumps(alert.data).decode(),
        audience_json,
        alert.ttl_s,
        alert.priority,
        created_by,
        alert.kind,
        None if alert.targets is None else msgspec.json.encode(alert.targets).decode(),
        owner,
        msgspec.json.encode(alert.extras or Extras()).decode(),
        alert.send_at,
        None if alert.canary is None else msgspec.json.encode(alert.canary).decode(),
    )
    if row is not None:
        return _from_row(row), True
    row = await pool.fetchrow(
        "SELECT * FROM alerts WHERE created_by = $1 AND idempotency_key = $2",
        created_by,
        idempotency_key,
    )
    assert row is not None, "conflicting insert must leave a row"
    if row["request_hash"] != request_hash:
        raise IdempotencyConflict(idempotency_key)
    return _from_row(row), False


async def accepted_before(
    pool: asyncpg.Pool, alert: AlertIn, idempotency_key: str | None, created_by: str | None
) -> Alert | None:
    """The alert `created_by` made earlier with this key and this very request, if any."""
    if idempotency_key is None:
        return None
    row = await pool.fetchrow(
        "SELECT * FROM alerts WHERE created_by = $1 AND idempotency_key = $2",
        created_by,
        idempotency_key,
    )
    if row is None or row["request_hash"] != alert.request_hash():
        return None
    return _from_row(row)


async def get(pool: asyncpg.Pool | asyncpg.Connection, alert_id: str) -> Alert | None:
    try:
        key = uuid.UUID(alert_id)
    except ValueError:
        return None
    row = await pool.fetchrow("SELECT * FROM alerts WHERE id = $1", key)
    return _from_row(row) if row else None


async def recent(pool: asyncpg.Pool, limit: int) -> list[Alert]:
    rows = await pool.fetch("SELECT * FROM alerts ORDER BY created_at DESC LIMIT $1", limit)
    return [_from_row(r) for r in rows]


async def finish(pool: asyncpg.Pool | asyncpg.Connection, alert_id: str, counts: Counts) -> bool:
    """Record the final counts once; the status becomes done unless the alert was cancelled.
    True if this call did it. An alert whose state Redis lost on the way also gets how many
    pushes the durable record shows were sent more than once."""
    recoveries = await pool.fetchval(
        """
        UPDATE alerts SET status = CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'done' END,
                          audience = $2, delivered = $3, invalid = $4, failed = $5,
                          expired = $6, cancelled = $7, finished_at = now()
        WHERE id = $1 AND finished_at IS NULL
        RETURNING recoveries
        """,
        uuid.UUID(alert_id),
        counts.audience,
        counts.delivered,
        counts.invalid,
        counts.failed,
        counts.expired,
        counts.cancelled,
    )
    if recoveries is None:
        return False
    if recoveries:
        state = await outcome_record.rebuild(pool, alert_id)
        await pool.execute(
            "UPDATE alerts SET resent = $2 WHERE id = $1", uuid.UUID(alert_id), state.resent
        )
    return True


async def cancel(pool: asyncpg.Pool | asyncpg.Connection, alert_id: str) -> Alert | None:
    """Mark an unfinished alert cancelled; returns it as it now stands (None if unknown).
    Workers learn of it through pushfan.cancellation; the caller publishes that. A scheduled
    alert that has not fired ends here: nothing was queued, nothing will be (the scheduler
    takes `scheduled` rows only, under a row lock this update waits for)."""
    try:
        key = uuid.UUID(alert_id)
    except ValueError:
        return None
    row = await pool.fetchrow(
        """
        UPDATE alerts SET status = 'cancelled',
                          finished_at = CASE WHEN status = 'scheduled' THEN now() END
        WHERE id = $1 AND finished_at IS NULL AND status <> 'cancelled'
        RETURNING *
        """,
        key,
    )
    if row is None:
        return await get(pool, alert_id)
    return _from_row(row)


async def pause(pool: asyncpg.Pool | asyncpg.Connection, alert_id: str, reason: str) -> bool:
    """Mark a running alert paused; True if this call did it. Workers learn of it through
    pushfan.pausing; the caller publishes that. A scheduled, finished, cancelled or already
    paused alert stays as it is."""
    done = await pool.fetchval(
        """
        UPDATE alerts SET status = 'paused', paused_reason = $2
        WHERE id = $1 AND finished_at IS NULL AND status IN ('queued', 'expanding', 'sending')
        RETURNING true
        """,
        uuid.UUID(alert_id),
        reason,
    )
    return bool(done)


async def resume(pool: asyncpg.Pool | asyncpg.Connection, alert_id: str) -> Alert | None:
    """Put a paused alert back to running; returns it as it now stands (None if unknown).
    The caller tells the workers (pushfan.pausing.mark_resumed)."""
    try:
        key = uuid.UUID(alert_id)
    except ValueError:
        return None
    row = await pool.fetchrow(
        """
        UPDATE alerts SET status = 'queued', paused_reason = NULL
        WHERE id = $1 AND status = 'paused'
        RETURNING *
        """,
        key,
    )
    if row is None:
        return await get(pool, alert_id)
    return _from_row(row)


async def take_due(conn: asyncpg.Connection, limit: int) -> list[Alert]:
    """Lock and return up to `limit` scheduled alerts whose `send_at` has come, oldest first,
    skipping rows another scheduler holds. Call inside a transaction; `mark_fired` them in
    the same one."""
    rows = await conn.fetch(
        """
        SELECT * FROM alerts WHERE status = 'scheduled' AND send_at <= now()
        ORDER BY send_at LIMIT $1 FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    return [_from_row(r) for r in rows]


async def mark_fired(conn: asyncpg.Connection, alert_ids: list[str]) -> None:
    await conn.execute(
        "UPDATE alerts SET status = 'queued', fired_at = now() WHERE id = ANY($1::uuid[])",
        [uuid.UUID(a) for a in alert_ids],
    )


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the next scheduled alert is due (<= 0: due now); None if none is."""
    value = await pool.fetchval(
        "SELECT extract(epoch FROM min(send_at) - now()) FROM alerts WHERE status = 'scheduled'"
    )
    return None if value is None else float(value)
