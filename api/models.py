"""Request and response bodies of the REST API. Unknown fields are refused (422)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from pushfan import audience, registry, timezones
from pushfan.alerts import AlertIn
from pushfan.content import Message
from pushfan.messages import AudienceFilter, Canary, TargetSpec, TokenTarget, UserTarget

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
AppName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_BYTES = 2048
AttributeKey = Annotated[str, StringConstraints(pattern=audience.ATTRIBUTE_KEY.pattern)]
AttributeValue = (
    StrictBool
    | Annotated[str, StringConstraints(max_length=256)]
    | Annotated[int, Field(ge=-(2**53), le=2**53, strict=True)]
    | Annotated[float, Field(ge=-(2**53), le=2**53, allow_inf_nan=False, strict=True)]
)


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


MAX_EXPIRATION_MS = 253_402_300_799_999


class SubscriptionKeys(Strict):
    p256dh: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    auth: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class WebSubscription(BaseModel):
    """A browser's PushSubscription as `JSON.stringify(subscription)` gives it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    keys: SubscriptionKeys
    # ms since the epoch; at most the end of year 9999, the last instant a timestamp holds
    expiration_time: int | None = Field(None, alias="expirationTime", ge=0, le=MAX_EXPIRATION_MS)


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

    app_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    os_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    attributes: dict[AttributeKey, AttributeValue] = Field(
        default_factory=dict, max_length=MAX_ATTRIBUTES, fail_fast=True
    )

    @model_validator(mode="after")
    def _ios_only_sandbox(self) -> DeviceRegistration:
        if self.platform != "ios" and self.apns_environment != "production":
            raise ValueError("apns_environment sandbox is for ios devices only")
        return self

    @field_validator("time_zone")
    @classmethod
    def _iana_zone(cls, value: str | None) -> str | None:
        return value if value is None else timezones.check(value)

    @field_validator("attributes")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(orjson.dumps(value)) > MAX_ATTRIBUTE_BYTES:
            raise ValueError(f"attributes take at most {MAX_ATTRIBUTE_BYTES} bytes as JSON")
        return value

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


MAX_AUDIENCE_USERS = 100_000
DeviceId = Annotated[int, Field(ge=1, le=2**63 - 1)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ListId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
SegmentName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
FILTER_DOC = "a segment expression (pushfan.audience): and/or/not over device fields"


def _check_filter(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        audience.parse(value)  # InvalidFilter is a ValueError: a 422 naming the node
    return value


class AudienceIn(Strict):
    """Every part given must hold: the list filters, the expression, the saved segment (by
    name), the user ids; then the exclusions are removed."""

    platforms: list[Literal["ios", "android", "web"]] = Field(
        default_factory=list, max_length=3, fail_fast=True
    )
    apps: list[AppName] = Field(default_factory=list, max_length=100, fail_fast=True)
    tags: list[Tag] = Field(default_factory=list, max_length=32, fail_fast=True)
    filter: dict[str, Any] | None = Field(None, description=FILTER_DOC)
    segment: SegmentName | None = None
    user_ids: list[UserId] = Field(
        default_factory=list, max_length=MAX_AUDIENCE_USERS, fail_fast=True
    )
    exclude_user_ids: list[UserId] = Field(
        default_factory=list, max_length=MAX_AUDIENCE_USERS, fail_fast=True
    )
    exclude_device_ids: list[DeviceId] = Field(
        default_factory=list, max_length=MAX_AUDIENCE_USERS, fail_fast=True
    )
    user_list: ListId | None = Field(None, description="a complete user list (/v1/user-lists)")
    exclude_user_list: ListId | None = None

    _filter = field_validator("filter")(_check_filter)

    @model_validator(mode="after")
    def _inline_or_listed(self) -> AudienceIn:
        if self.user_ids and self.user_list is not None:
            raise ValueError("name the users in user_ids or by user_list, not both")
        if self.exclude_user_ids and self.exclude_user_list is not None:
            raise ValueError("exclude users in exclude_user_ids or by exclude_user_list, not both")
        return self

    def audience_filter(self, segment_filter: dict[str, Any] | None = None) -> AudienceFilter:
        """`segment_filter` is the saved segment's expression, looked up by the route."""
        expression = self.filter
        if segment_filter is not None:
            expression = (
                segment_filter if expression is None else {"and": [segment_filter, expression]}
            )
        return AudienceFilter(
            platforms=list(self.platforms),
            apps=list(self.apps),
            tags=list(self.tags),
            filter=expression,
            user_ids=list(self.user_ids),
            exclude_user_ids=list(self.exclude_user_ids),
            exclude_device_ids=list(self.exclude_device_ids),
            user_list=self.user_list,
            exclude_user_list=self.exclude_user_list,
            segment=self.segment,
        )


class SegmentIn(Strict):
    name: SegmentName
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    filter: dict[str, Any] = Field(description=FILTER_DOC, fail_fast=True)

    _filter = field_validator("filter")(_check_filter)


class SegmentOut(BaseModel):
    name: str
    description: str
    filter: dict[str, Any]
    created_at: str


def _rfc3339(value: object) -> object:
    """A time is an RFC 3339 string (a number would be read as Unix seconds)."""
    if not isinstance(value, str):
        raise ValueError("an RFC 3339 time with an offset, e.g. 2026-12-01T18:00:00Z")
    return value


class UserListIn(Strict):
    name: Annotated[str, StringConstraints(max_length=100)] = ""


class UserListOut(BaseModel):
    id: str
    name: str
    users: int = Field(description="distinct user ids so far")
    complete: bool = Field(description="usable in audiences, and unchangeable, once complete")
    created_at: str


class PushContent(Message):
    """What the phone shows, and for how long it may be delivered: alerts and targeted alike.
    The fields and their rules are pushfan.content.Message's; `send_at` schedules it."""

    send_at: Annotated[AwareDatetime, BeforeValidator(_rfc3339)] | None = Field(
        None,
        description="RFC 3339 time with an offset, in the future and at most 30 days ahead: "
        "the alert is stored `scheduled` and sent then (absent: at once)",
    )

    def _alert_in(self, audience: AudienceFilter, targets: TargetSpec | None) -> AlertIn:
        return AlertIn(
            title=self.text("title") or "",
            body=self.text("body") or "",
            data=self.data,
            audience=audience,
            ttl_s=self.ttl,
            priority=self.resolved_priority,
            targets=targets,
            extras=self.extras(),
            send_at=self.send_at,
        )


class CanaryIn(Strict):
    """Send a slice first; pause the alert if too much of it fails (pushfan.canary)."""

    devices: int | None = Field(None, ge=1, le=1_000_000, strict=True)
    percent: float | None = Field(None, gt=0, lt=100, allow_inf_nan=False)
    max_failure_ratio: float = Field(
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description="pause when more than this share of the canary ended invalid, failed or "
        "refused for authentication",
    )

    @model_validator(mode="after")
    def _one_size(self) -> CanaryIn:
        if (self.devices is None) == (self.percent is None):
            raise ValueError("give exactly one of devices and percent")
        return self

    def canary(self) -> Canary:
        return Canary(
            max_failure_ratio=self.max_failure_ratio,
            devices=self.devices or 0,
            percent=self.percent or 0.0,
        )


class AlertCreate(PushContent):
    audience: AudienceIn = Field(default_factory=AudienceIn)
    canary: CanaryIn | None = None

    def alert_in(self, segment_filter: dict[str, Any] | None = None) -> AlertIn:
        alert = self._alert_in(self.audience.audience_filter(segment_filter), None)
        return alert if self.canary is None else replace(alert, canary=self.canary.canary())


MAX_TARGETS = 10_000


class TokenTargetIn(Strict):
    """A device by its token. A browser (`platform: "web"`) is named by its subscription's
    `endpoint` as `token`, or by the whole PushSubscription as `subscription`; either is
    checked as a registration is (the route checks the endpoint against the allowlist) and
    names the device registered with that endpoint, which is sent with its registered keys."""

    platform: Literal["ios", "android", "web"]
    app: AppName
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    subscription: WebSubscription | None = None

    @model_validator(mode="after")
    def _normal_token(self) -> TokenTargetIn:
        if self.platform == "web":
            if (self.token is None) == (self.subscription is None):
                raise ValueError(
                    "a web target gives `token` (the subscription's endpoint) or "
                    "`subscription`, one of them"
                )
            return self
        if self.token is None or self.subscription is not None:
            raise ValueError(f"an {self.platform} target gives `token`, no subscription")
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
                TokenTarget(platform=t.platform, app=t.app, token=t.token or "")
                for t in self.to.tokens
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
    status: Literal["scheduled", "queued", "expanding", "sending", "paused", "done", "cancelled"]
    title: str
    created_at: str
    send_at: str | None = Field(None, description="when a scheduled alert is (or was) sent")
    paused_reason: str | None = Field(
        None, description="why a paused alert paused itself; POST .../resume sends the rest"
    )
    fired_at: str | None = Field(None, description="when the scheduler queued it")
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


class AudienceBucket(BaseModel):
    provider: str
    app: str
    locale: str | None
    devices: int


class PayloadPreview(BaseModel):
    provider: str
    locale: str | None = Field(None, description="the content's locale; null: the default")
    bytes: int = Field(description="as the provider counts it (FCM: with a 163-char token)")
    limit: int
    payload: dict[str, Any]


class CredentialCheck(BaseModel):
    app: str
    provider: str
    ok: bool
    detail: str
    validated_tokens: int = 0
    unregistered_tokens: int = 0


class PreviewOut(BaseModel):
    """What POST /v1/alerts would do now; nothing was sent or stored."""

    audience: int
    count_ms: float
    by: list[AudienceBucket]
    payloads: list[PayloadPreview]
    credentials: list[CredentialCheck]
    seconds: float = Field(description="predicted duration: quotas and sender capacity")
    seconds_per_provider: dict[str, float]
