"""A follow-up: new content to exactly the devices a finished alert was delivered to, under
the original's collapse id so the phone replaces the original (pushfan.follow_up)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Response, status

from pushfan import alerts, follow_up, outcome_retention
from pushfan.api import alerting, tenancy
from pushfan.api.deps import Res, require_trigger
from pushfan.api.models import INVALID, AlertOut, Problem
from pushfan.api.outcome_models import FollowUpCreate
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/alerts", tags=["alerts"], responses=INVALID
)


@router.post(
    "/{alert_id}/follow-up",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertOut,
    responses={
        **alerting.TRIGGER_RESPONSES,
        404: {"model": Problem, "description": "no such alert"},
        409: {"model": Problem, "description": "the alert has not finished"},
        410: {"model": Problem, "description": "the alert's outcomes are past retention"},
    },
)
async def create_follow_up(
    alert_id: str,
    body: Annotated[FollowUpCreate, Body()],
    res: Res,
    response: Response,
    key: Annotated[ApiKey, Depends(require_trigger("alerts:send"))],
    idempotency_key: alerting.IdempotencyKey = None,
) -> AlertOut:
    """Send `body` to the devices whose outcome for the alert is `delivered`, and to no
    other; the audience equals the original's delivered count (less devices deactivated
    since). The original must have finished."""
    original = await alerts.get(res.pool, alert_id)
    if original is None or not tenancy.visible(key, original):
        raise HTTPException(404, "no such alert")
    if original.finished_at is None:
        raise HTTPException(409, "the alert has not finished: its delivered set is not final")
    if outcome_retention.expired(original.finished_at, res.settings.outcome_retention_days):
        raise HTTPException(410, "this alert's outcomes are past retention and were removed")
    alert_in = body.alert_in(original)
    audience = tenancy.scoped(key, alert_in.audience, res.settings.app_names)
    await follow_up.materialise(res.pool, original.id)
    alert = await alerting.submit(
        res, replace(alert_in, audience=audience), idempotency_key, key.id, key.owner
    )
    response.headers["Location"] = f"/v1/alerts/{alert.id}"
    return alerting.alert_out(alert, None)
