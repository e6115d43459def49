"""Request and response bodies of the REST API. Unknown fields are refused (422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pushfan import registry
from pushfan.alerts import AlertIn
from pushfan.content import Message
from pushfan.messages import AudienceFilter, TargetSpec, TokenTarget, UserTarget

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
AppName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class Strict(BaseModel):
    """Unknown fields are refused. Every list and dict field is `fail_fast`: one error per
    container, however many bad items it holds, so a 422's cost does not grow with the body
    (tests/api/test_hostile_input.py checks every model for it)."""

    model_config = ConfigDict(extra="forbid")


def _token(platform: str, token: str) -> str:
    """The registry's normal form of a token (one place: pushfan.registry)."""
    try:
        return registry.normalise_token(platform, token)
    except registry.BadToken as exc:
        raise ValueError(str(exc)) from None


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
    tags: list[Tag] = Field(default_factory=list, max_length=32, fail_fast=True)
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
        if self.token is not None:
            self.token = _token(self.platform, self.token)
        return self


class DeviceOut(BaseModel):
    id: int
    created: bool


class AudienceIn(Strict):
    platforms: list[Literal["ios", "android", "web"]] = Field(
        default_factory=list, max_length=3, fail_fast=True
    )
    apps: list[AppName] = Field(default_factory=list, max_length=100, fail_fast=True)
    tags: list[Tag] = Field(default_factory=list, max_length=32, fail_fast=True)


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

    @model_validator(mode="after")
    def _normal_token(self) -> TokenTargetIn:
        self.token = _token(self.platform, self.token)
        return self


class UserTargetIn(Strict):
    app: AppName
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TargetsIn(Strict):
    """Explicit recipients; duplicates (a device named twice) get one push."""

    device_ids: list[DeviceId] = Field(default_factory=list, max_length=MAX_TARGETS, fail_fast=True)
    tokens: list[TokenTargetIn] = Field(
        default_factory=list, max_length=MAX_TARGETS, fail_fast=True
    )
    user_ids: list[UserTargetIn] = Field(
        default_factory=list, max_length=MAX_TARGETS, fail_fast=True
    )

    @model_validator(mode="after")
    def _total(self) -> TargetsIn:
        total = len(self.device_ids) + len(self.tokens) + len(self.user_ids)
        if not 1 <= total <= MAX_TARGETS:
            raise ValueError(f"name 1 to {MAX_TARGETS} targets in all; got {total}")
        return self


class NotificationCreate(PushContent):
    to: TargetsIn

    def alert_in(self) -> AlertIn:
        spec = TargetSpec(
            device_ids=list(self.to.device_ids),
            tokens=[
                TokenTarget(platform=t.platform, app=t.app, token=t.token) for t in self.to.tokens
            ],
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


class RecoveryOut(BaseModel):
    """Redis lost this alert's live state while it ran; it was rebuilt from PostgreSQL."""

    count: int = Field(description="how many times the state was rebuilt")
    last_at: str | None = None
    resent: int | None = Field(
        None,
        description="pushes sent a second time because of the losses (the durable record's "
        "count); known once the alert finished",
    )


class AlertOut(BaseModel):
    id: str
    kind: Literal["global", "targeted"] = "global"
    status: Literal["queued", "expanding", "sending", "done", "cancelled"]
    title: str
    created_at: str
    expires_at: str
    finished_at: str | None
    counts: CountsOut
    recovery: RecoveryOut | None = None


class Problem(BaseModel):
    detail: str


class InvalidRequest(BaseModel):
    """A 422: up to 10 errors of {type, loc, msg} (pushfan.api.hygiene.short_errors; never
    the input), or one sentence for the checks made after parsing (unknown apps, reserved
    data keys, rendered payload sizes)."""

    detail: str | list[dict[str, Any]]


INVALID: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no API key, or an unknown one"},
    403: {"model": Problem, "description": "the key was revoked or lacks the scope"},
    413: {"model": Problem, "description": "the request body is over the size limit"},
    422: {"model": InvalidRequest, "description": "not acceptable; `detail` says why"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "not found"}}
