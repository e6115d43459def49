"""Global alerts: trigger one (202 at once, whatever the audience size) and follow it."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status

from api.deps import Res, require
from api.models import AlertCreate, AlertOut, Counts
from pushfan import alerts, metrics, payloads
from pushfan.apikeys import ApiKey
from pushfan.messages import AudienceFilter, ExpandTask, Notification, encode
from pushfan.progress import Counts as LiveCounts

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255, pattern=r"^[\x21-\x7e]+$"),
]


def alert_out(alert: alerts.Alert, live: LiveCounts | None) -> AlertOut:
    if alert.status in ("done", "cancelled") or live is None:
        audience = alert.audience
        delivered, invalid, failed = alert.delivered, alert.invalid, alert.failed
        expired = alert.expired
    else:
        audience = live.audience if live.expanded else None
        delivered, invalid, failed, expired = (
            live.delivered,
            live.invalid,
            live.failed,
            live.expired,
        )
    finished = delivered + invalid + failed + expired
    pending = None if audience is None else max(0, audience - finished)
    return AlertOut(
        id=alert.id,
        status=alert.status,
        title=alert.title,
        created_at=alert.created_at.isoformat(),
        expires_at=alert.expires_at.isoformat(),
        finished_at=alert.finished_at.isoformat() if alert.finished_at else None,
        counts=Counts(
            audience=audience,
            delivered=delivered,
            invalid=invalid,
            failed=failed,
            expired=expired,
            pending=pending,
        ),
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertOut,
    responses={409: {"description": "Idempotency-Key reused with another request"}},
)
async def create_alert(
    body: AlertCreate,
    res: Res,
    response: Response,
    key: Annotated[ApiKey, Depends(require("alerts:send"))],
    idempotency_key: IdempotencyKey = None,
) -> AlertOut:
    unknown = set(body.audience.apps) - set(res.settings.app_names)
    if unknown:
        raise HTTPException(422, f"unknown app(s) in audience: {', '.join(sorted(unknown))}")
    alert_in = alerts.AlertIn(
        title=body.title,
        body=body.body,
        data=body.data,
        audience=AudienceFilter(
            platforms=list(body.audience.platforms),
            apps=list(body.audience.apps),
            tags=list(body.audience.tags),
        ),
        ttl_s=body.ttl,
        priority=body.priority,
    )

    too_big = payloads.oversize_reason(
        Notification(title=body.title, body=body.body, data=body.data, collapse_id="0" * 36)
    )
    if too_big:
        raise HTTPException(422, too_big)
    try:
        alert, created = await alerts.create(res.pool, alert_in, idempotency_key, key.id)
    except alerts.IdempotencyConflict:
        raise HTTPException(
            409, "this Idempotency-Key was already used with a different request"
        ) from None
    if not alert.published:
        # Publish the plan only; the expander splits it into shards, so the trigger's cost
        # does not depend on the audience.
        task = ExpandTask(
            alert_id=alert.id,
            kind="plan",
            audience=alert.audience_filter,
            notification=alert.notification(),
        )
        try:
            await res.publisher.publish(res.queues.expand, encode(task), f"{alert.id}:plan")
        except Exception:
            log.exception("could not publish alert %s", alert.id)
            raise HTTPException(
                503, "the broker did not confirm the alert; retry with the same Idempotency-Key"
            ) from None
        await alerts.mark_published(res.pool, alert.id)
        metrics.ALERTS_CREATED.inc()
    if created:
        log.info("alert %s created by key %s", alert.id, key.id)
    response.headers["Location"] = f"/v1/alerts/{alert.id}"
    return alert_out(alert, None)


@router.get("/{alert_id}", response_model=AlertOut)
async def get_alert(
    alert_id: str,
    res: Res,
    _key: Annotated[ApiKey, Depends(require("alerts:send"))],
) -> AlertOut:
    alert = await alerts.get(res.pool, alert_id)
    if alert is None:
        raise HTTPException(404, "no such alert")
    live = None
    if alert.status not in ("done", "cancelled"):
        live = await res.progress.counts(alert.id)
    return alert_out(alert, live)
