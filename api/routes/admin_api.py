"""The dashboard's JSON endpoints, for its scripts: audience estimate, send, progress of
every alert, cancel. Signed-in admins only; every POST carries the session's CSRF token."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query
from pydantic import BaseModel, ValidationError

from pushfan import admins, alerts, registry
from pushfan.api import alerting
from pushfan.api.admin import Sender, Viewer
from pushfan.api.deps import Res
from pushfan.api.models import AlertCreate, AlertOut, AudienceIn
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import DASHBOARD_OWNER

router = APIRouter(route_class=GuardedRoute, prefix="/admin/api", include_in_schema=False)

# Alerts sent from the dashboard belong to DASHBOARD_OWNER: no API key sees them (keys see
# only their owner's), and only the `admin` role cancels alerts of any other owner from here.


class Estimate(BaseModel):
    audience: int
    milliseconds: float


class AdminAlert(AlertOut):
    audience_filter: dict[str, list[str]]
    age_s: float


class AlertList(BaseModel):
    alerts: list[AdminAlert]


@router.get("/estimate", response_model=Estimate)
async def estimate(
    res: Res,
    _session: Viewer,
    platforms: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    apps: Annotated[list[str], Query()] = [],  # noqa: B006
    tags: Annotated[list[str], Query()] = [],  # noqa: B006
    segment: Annotated[str | None, Query(max_length=64)] = None,
) -> Estimate:
    try:
        audience = AudienceIn(platforms=platforms, apps=apps, tags=tags, segment=segment)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_input=False)) from None
    unknown = set(audience.apps) - set(res.settings.app_names)
    if unknown:
        raise HTTPException(422, f"unknown app(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    segment_filter = await alerting.resolve_segment(res, None, audience.segment)
    count = await registry.count_audience(res.pool, audience.audience_filter(segment_filter))
    return Estimate(audience=count, milliseconds=round((time.perf_counter() - started) * 1000, 1))


@router.post("/alerts", response_model=AdminAlert, status_code=202)
async def send(
    body: AlertCreate,
    res: Res,
    session: Sender,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> AdminAlert:
    # The same path as POST /v1/alerts; a double click resends the same key, so one alert.
    key = f"{session.actor}:{idempotency_key}" if idempotency_key else None
    segment_filter = await alerting.resolve_segment(res, None, body.audience.segment)
    alert_in = body.alert_in(segment_filter)
    alert = await alerting.submit(res, alert_in, key, session.actor, DASHBOARD_OWNER)
    return await _admin_alert(res, alert)


@router.get("/alerts", response_model=AlertList)
async def list_alerts(res: Res, _session: Viewer) -> AlertList:
    recent = await alerts.recent(res.pool, alerting.HISTORY)
    return AlertList(alerts=[await _admin_alert(res, a) for a in recent])


@router.post("/alerts/{alert_id}/cancel", response_model=AdminAlert)
async def cancel(alert_id: str, res: Res, session: Sender) -> AdminAlert:
    # The same cancel as POST /v1/alerts/{id}/cancel.
    def may_cancel(alert: alerts.Alert) -> bool:
        if alert.owner != DASHBOARD_OWNER and not admins.includes(session.role, "admin"):
            raise HTTPException(403, "only an admin may cancel alerts sent through the REST API")
        return True

    alert = await alerting.cancel(res, alert_id, may_cancel)
    return await _admin_alert(res, alert)


async def _admin_alert(res: Res, alert: alerts.Alert) -> AdminAlert:
    out = await alerting.current(res, alert)
    age = time.time() - alert.created_at.timestamp()
    if alert.finished_at is not None:
        age = (alert.finished_at - alert.created_at).total_seconds()
    return AdminAlert(
        **out.model_dump(),
        audience_filter={
            "platforms": list(alert.audience_filter.platforms),
            "apps": list(alert.audience_filter.apps),
            "tags": list(alert.audience_filter.tags),
        },
        age_s=round(age, 3),
    )
