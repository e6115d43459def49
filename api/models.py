"""Request and response bodies of the REST API. Unknown fields are refused (422)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pushfan.alerts import AlertIn
from pushfan.content import Message
from pushfan.messages import AudienceFilter, TargetSpec, TokenTarget, UserTarget

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
AppName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


# Each platform's token format, and the rule a refusal states.
TOKEN_FORMATS = {
    "ios": (re.compile(r"^[0-9a-fA-F]{64}$"), "an APNs device token is 64 hex characters"),
    "android": (
        re.compile(r"^[A-Za-z0-9_:\-]{32,4096}$"),
        "an FCM registration token is 32 to 4096 characters of [A-Za-z0-9_:-]",
    ),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriptionKeys(Strict):
    p256dh: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    auth: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class WebSubscription(BaseModel):
    """A browser's PushSubscription as `JSON.stringify(subscription)` gives it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    keys: SubscriptionKeys
    expiration_time: int | None = Field(None, alias="expirationTime", ge=0, le=2**53)


class DeviceRegistration(Strict):
    platform: Literal["ios", "android", "web"]
    app: AppName
    # ios/android: the provider's device token; web: `subscription` instead.
    token: Annotated[str, StringConstraints(min_length=32, max_length=4096)] | None = None
    subscription: WebSubscription | None = None
    user_id: Annotated[str, StringConstraints(max_length=256)] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    time_zone: Annotated[str, StringConstraints(max_length=64)] | None = None
    apns_environment: Literal["production", "sandbox"] = Field(
        "production",
        description="the APNs host for this iOS device: sandbox for development builds",
    )

    @model_validator(mode="after")
    def _ios_only_sandbox(self) -> DeviceRegistration:
        if self.platform != "ios" and self.apns_environment != "production":
            raise ValueError("apns_environment sandbox is for ios devices only")
        return self

    @model_validator(mode="after")
    def _token_or_subscription(self) -> DeviceRegistration:
        if self.platform == "web" and (self.subscription is None or self.token is not None):
            raise ValueError("a web device gives `subscription` (a PushSubscription), no token")
        if self.platform != "web" and (self.token is None or self.subscription is not None):
            raise ValueError(f"an {self.platform} device gives `token`, no subscription")
        return self


class DeviceOut(BaseModel):
    id: int
    created: bool


class AudienceIn(Strict):
    platforms: list[Literal["ios", "android", "web"]] = Field(default_factory=list, max_length=3)
    apps: list[AppName] = Field(default_factory=list, max_length=100)
    tags: list[Tag] = Field(default_factory=list, max_length=32)


class PushContent(Message):
    """What the phone shows, and for how long it may be delivered: alerts and targeted alike.
    The fields and their rules are pushfan.content.Message's."""

    def _alert_in(self, audience: AudienceFilter, targets: TargetSpec | None) -> AlertIn:
        return AlertIn(
            title=self.title or "",
            body=self.body or "",
            data=self.data,
            audience=audience,
            ttl_s=self.ttl,
            priority=self.resolved_priority,
            targets=targets,
            extras=self.extras(),
        )


class AlertCreate(PushContent):
    audience: AudienceIn = Field(default_factory=AudienceIn)

    def alert_in(self) -> AlertIn:
        audience = AudienceFilter(
            platforms=list(self.audience.platforms),
            apps=list(self.audience.apps),
            tags=list(self.audience.tags),
        )
        return self._alert_in(audience, None)


MAX_TARGETS = 10_000
DeviceId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class TokenTargetIn(Strict):
    platform: Literal["ios", "android"]
    app: AppName
    token: Annotated[str, StringConstraints(min_length=32, max_length=4096)]


class UserTargetIn(Strict):
    app: AppName
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TargetsIn(Strict):
    """Explicit recipients; duplicates (a device named twice) get one push."""

    device_ids: list[DeviceId] = Field(default_factory=list, max_length=MAX_TARGETS)
    tokens: list[TokenTargetIn] = Field(default_factory=list, max_length=MAX_TARGETS)
    user_ids: list[UserTargetIn] = Field(default_factory=list, max_length=MAX_TARGETS)

    @model_validator(mode="after")
    def _total(self) -> TargetsIn:
        total = len(self.device_ids) + len(self.tokens) + len(self.user_ids)
        if not 1 <= total <= MAX_TARGETS:
            raise ValueError(f"name 1 to {MAX_TARGETS} targets in all; got {total}")
        return self


class NotificationCreate(PushContent):
    to: TargetsIn

    def alert_in(self, tokens: list[TokenTarget]) -> AlertIn:
        """`tokens` are the request's tokens once normalised by the route."""
        spec = TargetSpec(
            device_ids=list(self.to.device_ids),
            tokens=tokens,
            user_ids=[UserTarget(app=u.app, user_id=u.user_id) for u in self.to.user_ids],
        )
        return self._alert_in(AudienceFilter(), spec)


class CountsOut(BaseModel):
    audience: int | None
    delivered: int
    invalid: int
    failed: int
    expired: int
    cancelled: int
    pending: int | None


class AlertOut(BaseModel):
    id: str
    kind: Literal["global", "targeted"] = "global"
    status: Literal["queued", "expanding", "sending", "done", "cancelled"]
    title: str
    created_at: str
    expires_at: str
    finished_at: str | None
    counts: CountsOut


class Problem(BaseModel):
    detail: str


class InvalidRequest(BaseModel):
    """A 422: pydantic's list of field errors, or one sentence for the checks made after
    parsing (token formats, unknown apps, rendered payload sizes)."""

    detail: str | list[dict[str, Any]]


INVALID: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no API key, or an unknown one"},
    403: {"model": Problem, "description": "the key was revoked or lacks the scope"},
    422: {"model": InvalidRequest, "description": "not acceptable; `detail` says why"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "not found"}}
