"""Receipts from phones: `POST /v1/receipts` with an app's publishable key (scope
`receipts:write`, bound to one app, good for nothing else), once per (alert, device, event)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, StringConstraints, model_validator

from pushfan import alerts, receipts
from pushfan.api.deps import Res, require_receipt
from pushfan.api.models import INVALID, Problem, Strict
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/receipts", tags=["receipts"], responses=INVALID
)


class ReceiptIn(Strict):
    alert_id: uuid.UUID
    device_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    event: Literal["received", "displayed", "opened"]
    at: datetime | None = Field(None, description="when it happened on the phone (default: now)")

    @model_validator(mode="after")
    def _one_device(self) -> ReceiptIn:
        if (self.device_id is None) == (self.token is None):
            raise ValueError("name the device by device_id or by token, not both")
        return self


class ReceiptOut(BaseModel):
    recorded: bool = Field(description="false: this device had already reported this event")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReceiptOut,
    responses={
        404: {"model": Problem, "description": "no such alert or device for this key"},
        429: {"description": "rate limit of this client address or key reached (Retry-After)"},
    },
)
async def post_receipt(
    body: ReceiptIn,
    res: Res,
    key: Annotated[ApiKey, Depends(require_receipt("receipts:write"))],
) -> ReceiptOut:
    """The device (of the key's app) received, displayed or opened the alert (of the key's
    owner, for that app). A replay answers `recorded: false` and counts nothing."""
    if key.all_apps or len(key.apps) != 1:
        raise HTTPException(403, "receipts need a publishable key bound to one app")
    [app] = key.apps
    alert = await alerts.get(res.pool, str(body.alert_id))
    apps = alert.audience_filter.apps if alert else []
    if alert is None or alert.owner != key.owner or (apps and app not in apps):
        raise HTTPException(404, "no such alert")
    device = await receipts.device_app(res.pool, app, body.device_id, body.token)
    if device is None:
        raise HTTPException(404, "no such device in this key's app")
    at = body.at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    recorded = await receipts.record(res.pool, body.alert_id, device, body.event, at)
    return ReceiptOut(recorded=recorded)
