"""The JSON shapes of an alert's per-device outcomes and report (api.routes.outcomes), and of
a follow-up (api.routes.follow_up)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import msgspec
from pydantic import BaseModel, Field

from pushfan import alerts
from pushfan.alerts import AlertIn
from pushfan.api.models import AlertOut, PushContent
from pushfan.messages import AudienceFilter, Extras

OutcomeName = Literal["delivered", "invalid", "failed", "expired", "cancelled"]


class DeviceOutcomeOut(BaseModel):
    device_id: int
    outcome: OutcomeName
    reason: str | None = Field(
        None, description="the provider's reason (or HTTP status) for invalid and failed pushes"
    )
    recorded_at: str
    attempts: int = Field(description="the attempt that ended the push, from 1")
    provider: str | None = Field(None, description="None when the push was never sent")
    app: str | None = None


class OutcomePage(BaseModel):
    items: list[DeviceOutcomeOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next page; None after the last"
    )


class LatencyOut(BaseModel):
    p50: float | None
    p99: float | None
    max: float | None


class ReportOut(BaseModel):
    """An alert's counts with its durable record's breakdown (outcome -> pushes)."""

    alert: AlertOut
    recorded: int = Field(
        description="final outcomes in the record (a push sent twice counts twice)"
    )
    by_provider: dict[str, dict[str, int]]
    by_app: dict[str, dict[str, int]]
    reasons: dict[str, dict[str, int]] = Field(description="outcome -> reason -> pushes")
    first_recorded_at: str | None
    last_recorded_at: str | None
    latency_ms: LatencyOut = Field(
        description="trigger to the provider's answer, per delivered push (batch granularity)"
    )
    receipts: dict[str, int] = Field(
        description="devices that reported received, displayed, opened; confirmed: any of them"
    )
    confirmed_delivery_rate: float | None = Field(description="confirmed / delivered")
    open_rate: float | None = Field(description="opened / delivered")


class FollowUpCreate(PushContent):
    """The follow-up's content; its audience is the original's delivered set."""

    def alert_in(self, original: alerts.Alert) -> AlertIn:
        """The follow-up of `original`: its apps, its delivered devices, its collapse id."""
        audience = AudienceFilter(
            apps=list(original.audience_filter.apps), delivered_of=original.id
        )
        alert_in = self._alert_in(audience, None)
        extras = msgspec.structs.replace(
            alert_in.extras or Extras(), collapse_id=original.notification().collapse_id
        )
        return replace(alert_in, extras=extras)
