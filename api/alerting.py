"""What the alert routes share (REST alerts and notifications, and the dashboard alike):
trigger, follow and cancel an alert with their refusals as HTTP answers, and its JSON view.
Route modules import this module, never each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, HTTPException

from pushfan import alerts, cancellation, pausing, segments, trigger
from pushfan.api.deps import ApiResources
from pushfan.api.models import AlertOut, CountsOut, RecoveryOut
from pushfan.ledger_epoch import LedgerLost
from pushfan.progress import Counts

# How long a live-counts read may wait for a ledger rebuild before the request answers 503.
LIVE_COUNTS_TIMEOUT_S = 3.0

# How many recent alerts the dashboard shows.
HISTORY = 50

# The answers both triggers (alerts and targeted notifications) add to 202.
TRIGGER_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "Idempotency-Key reused with another request"},
    429: {"description": "rate limit of this client address or API key reached (Retry-After)"},
}

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255, pattern=r"^[\x21-\x7e]+$"),
]


def alert_out(alert: alerts.Alert, live: Counts | None) -> AlertOut:
    status = alert.status
    if alert.finished_at is not None or live is None:
        audience = alert.audience
        delivered, invalid, failed = alert.delivered, alert.invalid, alert.failed
        expired, cancelled = alert.expired, alert.cancelled
    else:
        audience = live.audience if live.expanded else None
        delivered, invalid, failed = live.delivered, live.invalid, live.failed
        expired, cancelled = live.expired, live.cancelled
        if status not in ("cancelled", "paused"):
            status = live.stage
    finished = delivered + invalid + failed + expired + cancelled
    pending = None if audience is None else max(0, audience - finished)
    return AlertOut(
        id=alert.id,
        kind=alert.kind,
        status=status,
        title=alert.title,
        created_at=alert.created_at.isoformat(),
        send_at=_iso(alert.send_at),
        paused_reason=alert.paused_reason if status == "paused" else None,
        fired_at=_iso(alert.fired_at),
        expires_at=alert.expires_at.isoformat(),
        finished_at=alert.finished_at.isoformat() if alert.finished_at else None,
        recovery=None
        if not alert.recoveries
        else RecoveryOut(
            count=alert.recoveries,
            last_at=alert.last_recovery_at.isoformat() if alert.last_recovery_at else None,
            resent=alert.resent,
        ),
        counts=CountsOut(
            audience=audience,
            delivered=delivered,
            invalid=invalid,
            failed=failed,
            expired=expired,
            cancelled=cancelled,
            pending=pending,
        ),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def submit(
    res: ApiResources,
    alert_in: alerts.AlertIn,
    idempotency_key: str | None,
    actor: str,
    owner: str,
) -> alerts.Alert:
    """The shared trigger, with its refusals as HTTP answers (REST and dashboard alike)."""
    try:
        alert, _ = await res.trigger.submit(alert_in, idempotency_key, actor, owner)
    except trigger.Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    except trigger.IdempotencyConflict:
        raise HTTPException(
            409, "this Idempotency-Key was already used with a different request"
        ) from None
    except trigger.NotQueued:
        raise HTTPException(
            503,
            "the broker did not confirm the alert; retry with the same Idempotency-Key",
            headers={"Retry-After": "2"},
        ) from None
    return alert


async def current(res: ApiResources, alert: alerts.Alert) -> AlertOut:
    """The alert with live counts from Redis while it runs, stored counts once it ended."""
    live = None
    if alert.finished_at is None and alert.status != "scheduled":
        # After a Redis loss the first read rebuilds the ledger (pushfan.ledger_epoch): the
        # rebuild goes on in the background while this request answers 503 if it is slow.
        reading = asyncio.ensure_future(res.progress.counts(alert.id))
        try:
            live = await asyncio.wait_for(asyncio.shield(reading), LIVE_COUNTS_TIMEOUT_S)
        except TimeoutError:
            reading.add_done_callback(_consume)
            raise LedgerLost("still rebuilding the ledger") from None
    return alert_out(alert, live)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned read's failure is not an unhandled one


async def cancel(
    res: ApiResources, alert_id: str, may_cancel: Callable[[alerts.Alert], bool]
) -> alerts.Alert:
    """The shared cancel (REST and dashboard alike), with its refusals as HTTP answers.
    `may_cancel` says whether the caller may (False: 404, as for an unknown id; it may also
    raise its own refusal)."""
    found = await alerts.get(res.pool, alert_id)
    if found is None or not may_cancel(found):
        raise HTTPException(404, "no such alert")
    alert = await alerts.cancel(res.pool, alert_id)
    if alert is None:
        raise HTTPException(404, "no such alert")
    if alert.status != "cancelled":
        raise HTTPException(409, f"the alert already finished ({alert.status})")
    await cancellation.mark_cancelled(
        res.redis, res.settings.redis_prefix, alert.id, res.settings.progress_ttl_s
    )
    return alert


async def resume(
    res: ApiResources, alert_id: str, may_resume: Callable[[alerts.Alert], bool]
) -> alerts.Alert:
    """Send the rest of a paused alert (pushfan.pausing); checked like `cancel`. Resuming an
    alert that is not paused is a 409."""
    found = await alerts.get(res.pool, alert_id)
    if found is None or not may_resume(found):
        raise HTTPException(404, "no such alert")
    alert = await alerts.resume(res.pool, alert_id)
    if alert is None:
        raise HTTPException(404, "no such alert")
    if found.status != "paused":
        raise HTTPException(409, f"the alert is not paused ({alert.status})")
    await pausing.mark_resumed(
        res.redis, res.settings.redis_prefix, alert.id, res.settings.progress_ttl_s
    )
    return alert


async def resolve_segment(
    res: ApiResources, owner: str | None, name: str | None
) -> dict[str, Any] | None:
    """The expression of the owner's saved segment named in an audience (alerts, preview;
    owner None: the dashboard's lookup across owners); a 422 if there is none of that name.
    The alert keeps a copy, not the name's meaning."""
    if name is None:
        return None
    try:
        segment = await segments.get(res.pool, owner, name)
    except segments.Ambiguous:
        raise HTTPException(422, f"several owners have a segment {name!r}") from None
    if segment is None:
        raise HTTPException(422, f"unknown segment {name!r}")
    return segment.filter
