"""Targeted pushes for other systems: explicit device ids, tokens or user ids (≤ 10,000).

Stored as an alert of kind 'targeted' and sent through the same path as a global alert
(one expansion message, the same batches, dedup and counters), so it has the same
guarantees; its status is at GET /v1/notifications/{id} (or /v1/alerts/{id}).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Response, status

from pushfan import alerts
from pushfan.api import alerting, examples, tenancy
from pushfan.api.deps import Res, require, require_trigger
from pushfan.api.models import INVALID, NOT_FOUND, AlertOut, NotificationCreate
from pushfan.api.routing import GuardedRoute
from pushfan.api.subscriptions import web_target_token
from pushfan.apikeys import ApiKey
from pushfan.messages import AudienceFilter

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/notifications", tags=["notifications"], responses=INVALID
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertOut,
    responses=alerting.TRIGGER_RESPONSES,
)
async def create_notification(
    body: Annotated[NotificationCreate, Body(openapi_examples=examples.NOTIFICATIONS)],
    res: Res,
    response: Response,
    key: Annotated[ApiKey, Depends(require_trigger("notifications:send"))],
    idempotency_key: alerting.IdempotencyKey = None,
) -> AlertOut:
    named = [*(t.app for t in body.to.tokens), *(u.app for u in body.to.user_ids)]
    tenancy.check_apps(key, named, res.settings.app_names)
    for target in body.to.tokens:
        if target.platform == "web":
            target.token = web_target_token(target, res.settings)
    alert_in = body.alert_in()
    # Device ids of other apps are never reached: the expander resolves only the key's apps.
    audience = AudienceFilter(apps=tenancy.key_apps(key, res.settings.app_names))
    alert = await alerting.submit(
        res, replace(alert_in, audience=audience), idempotency_key, key.id, key.owner
    )
    response.headers["Location"] = f"/v1/notifications/{alert.id}"
    return alerting.alert_out(alert, None)


@router.get("/{notification_id}", response_model=AlertOut, responses=NOT_FOUND)
async def get_notification(
    notification_id: str,
    res: Res,
    key: Annotated[ApiKey, Depends(require("notifications:send"))],
) -> AlertOut:
    alert = await alerts.get(res.pool, notification_id)
    if alert is None or alert.kind != "targeted" or not tenancy.visible(key, alert):
        raise HTTPException(404, "no such notification")
    return await alerting.current(res, alert)
