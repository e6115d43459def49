"""Global alerts: trigger one (202 at once, whatever the audience size) and follow it."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Response, status

from pushfan import alerts
from pushfan.api import alerting, examples, tenancy
from pushfan.api.deps import Res, require, require_trigger, require_write
from pushfan.api.models import INVALID, NOT_FOUND, AlertCreate, AlertOut
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/alerts", tags=["alerts"], responses=INVALID
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertOut,
    responses=alerting.TRIGGER_RESPONSES,
)
async def create_alert(
    body: Annotated[AlertCreate, Body(openapi_examples=examples.ALERTS)],
    res: Res,
    response: Response,
    key: Annotated[ApiKey, Depends(require_trigger("alerts:send"))],
    idempotency_key: alerting.IdempotencyKey = None,
) -> AlertOut:
    segment_filter = await alerting.resolve_segment(res, key.owner, body.audience.segment)
    alert_in = body.alert_in(segment_filter)
    audience = tenancy.scoped(key, alert_in.audience, res.settings.app_names)
    alert_in = replace(alert_in, audience=audience)
    alert = await alerting.submit(res, alert_in, idempotency_key, key.id, key.owner)
    response.headers["Location"] = f"/v1/alerts/{alert.id}"
    return alerting.alert_out(alert, None)


@router.get("/{alert_id}", response_model=AlertOut, responses=NOT_FOUND)
async def get_alert(
    alert_id: str,
    res: Res,
    key: Annotated[ApiKey, Depends(require("alerts:send"))],
) -> AlertOut:
    alert = await alerts.get(res.pool, alert_id)
    if alert is None or not tenancy.visible(key, alert):
        raise HTTPException(404, "no such alert")
    return await alerting.current(res, alert)


@router.post(
    "/{alert_id}/cancel",
    response_model=AlertOut,
    responses={404: {"description": "no such alert"}, 409: {"description": "already finished"}},
)
async def cancel_alert(
    alert_id: str,
    res: Res,
    key: Annotated[ApiKey, Depends(require_write("alerts:send"))],
) -> AlertOut:
    """Stop an alert: within a second no push of it leaves any worker; the rest count
    `cancelled`. Cancelling a cancelled alert again is a no-op."""
    alert = await alerting.cancel(res, alert_id, lambda found: tenancy.visible(key, found))
    return await alerting.current(res, alert)


@router.post(
    "/{alert_id}/resume",
    response_model=AlertOut,
    responses={404: {"description": "no such alert"}, 409: {"description": "not paused"}},
)
async def resume_alert(
    alert_id: str,
    res: Res,
    key: Annotated[ApiKey, Depends(require_write("alerts:send"))],
) -> AlertOut:
    """Send the rest of an alert that paused itself (its first pushes were all refused for
    authentication): its held batches go out within seconds, none twice."""
    alert = await alerting.resume(res, alert_id, lambda found: tenancy.visible(key, found))
    return await alerting.current(res, alert)
