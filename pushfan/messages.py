"""Messages on the broker, encoded with msgspec (JSON): decoding is on every sender's hot path.

An expansion task is either the alert's plan (the whole device-id range, split by the
expander into shards), one shard `[lo, hi)`, or a targeted push's explicit list of targets.
A send batch carries everything a sender needs so it never reads the database: the rendered
notification once, then only ids and tokens.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from pushfan.provider import Provider


class AudienceFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who gets a global alert: every clause present must hold (pushfan.audience_sql)."""

    platforms: list[str] = []
    apps: list[str] = []
    tags: list[str] = []  # any of them
    filter: dict[str, Any] | None = None  # a segment expression (pushfan.audience), as sent
    user_ids: list[str] = []
    exclude_user_ids: list[str] = []
    exclude_device_ids: list[int] = []
    user_list: str | None = None  # a stored list's id (pushfan.user_lists), instead of user_ids
    exclude_user_list: str | None = None  # likewise, instead of exclude_user_ids
    segment: str | None = None  # the saved segment `filter` came from, for the record
    delivered_of: str | None = None  # a follow-up: only the devices this alert reached
    as_of: float = 0.0  # unix seconds that relative filters (last_seen) count from


class Sound(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    name: str
    critical: bool = False
    volume: float | None = None


class Localized(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """One locale's content; "" falls back to the parent locale's, then the default."""

    title: str = ""
    subtitle: str = ""
    body: str = ""


class Extras(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """What a message says beyond title, body and data (pushfan.content validates it; "" and
    None mean unset). `apns` and `android` are the validated override blocks, in the
    providers' own spelling, merged over the rendered payloads by pushfan.payloads."""

    subtitle: str = ""
    badge: int | None = None  # 0 clears the badge
    sound: Sound | None = None  # None: APNs plays "default", FCM the channel's sound
    image: str = ""
    category: str = ""
    thread_id: str = ""
    interruption_level: str = ""
    relevance_score: float | None = None
    url: str = ""
    content_available: bool = False  # silent (background) push
    data_only: bool = False  # FCM gets data only
    apns: dict[str, Any] = {}
    android: dict[str, Any] = {}
    # Content per locale (normal form, pushfan.localization) beside the default; the
    # expander resolves it per batch, so a send batch never carries it.
    locales: dict[str, Localized] = {}
    collapse_id: str = ""  # a follow-up: the collapse id of the notification it replaces


class Notification(msgspec.Struct, frozen=True):
    title: str  # "" for a silent push
    body: str
    data: dict[str, str] = {}
    priority: Literal["high", "normal"] = "high"
    expires_at: int = 0  # unix seconds; pushes after it are never sent
    collapse_id: str = ""  # = alert id: one notification on the phone even if sent twice
    extras: Extras | None = None  # None: a plain title + body alert
    # The alert the push belongs to, as the payload names it for the app (receipts): it
    # differs from collapse_id only in a follow-up, which replaces its original on the phone.
    alert_id: str = ""  # "": collapse_id

    @property
    def payload_alert_id(self) -> str:
        return self.alert_id or self.collapse_id


class TokenTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    platform: str
    app: str
    token: str


class UserTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    app: str
    user_id: str


class TargetSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The explicit audience of a targeted push (POST /v1/notifications)."""

    device_ids: list[int] = []
    tokens: list[TokenTarget] = []
    user_ids: list[UserTarget] = []

    def size(self) -> int:
        return len(self.device_ids) + len(self.tokens) + len(self.user_ids)


class Canary(msgspec.Struct, frozen=True):
    """Send `devices` pushes (or `percent` of the audience) first, then pause the alert if
    more than `max_failure_ratio` of them ended invalid, failed or refused for
    authentication (pushfan.canary). Exactly one of `devices` and `percent` is set."""

    max_failure_ratio: float
    devices: int = 0
    percent: float = 0.0


class ExpandTask(msgspec.Struct, frozen=True):
    alert_id: str
    kind: Literal["plan", "shard", "targets"]
    audience: AudienceFilter
    notification: Notification
    lo: int = 0
    hi: int = 0
    shard: int = -1
    targets: TargetSpec | None = None  # kind "targets" only: expanded as one shard, 0
    canary: Canary | None = None  # passed on to every SendBatch


class SendBatch(msgspec.Struct, frozen=True):
    alert_id: str
    batch_id: str  # alert:shard:provider[-sandbox]:app:seq, the same on every re-expansion
    provider: Provider
    app: str
    notification: Notification
    device_ids: list[int]
    tokens: list[str]
    attempt: int = 0
    environment: Literal["production", "sandbox"] = "production"  # APNs host
    canary: Canary | None = None  # the alert's, if it has one (pushfan.canary)

    @property
    def route(self) -> str:
        """The key of the provider client that sends it: the app, on the APNs host of the
        batch's environment."""
        return route(self.app, self.environment)


def route(app: str, environment: str) -> str:
    return app if environment == "production" else f"{app}@{environment}"


class InvalidTokens(msgspec.Struct, frozen=True):
    """Dead tokens of one batch, for the app's invalid-token webhook."""

    app: str
    provider: Provider
    batch_id: str
    device_ids: list[int]
    tokens: list[str]
    attempt: int = 0


_expand_decoder = msgspec.json.Decoder(ExpandTask)
_batch_decoder = msgspec.json.Decoder(SendBatch)
encode = msgspec.json.Encoder().encode


def decode_expand(body: bytes) -> ExpandTask:
    return _expand_decoder.decode(body)


def decode_batch(body: bytes) -> SendBatch:
    return _batch_decoder.decode(body)


_invalid_decoder = msgspec.json.Decoder(InvalidTokens)


def decode_invalid(body: bytes) -> InvalidTokens:
    return _invalid_decoder.decode(body)
