"""The message model: everything a push can say, for POST /v1/alerts, POST /v1/notifications
and the dashboard alike, validated once at submit time (a 422 says why).

Three kinds of message:

- **visible** (the default): `title`, `subtitle`, `body`, `badge`, `sound`, `image`,
  `category`, `thread_id`, `interruption_level`, `relevance_score`, `url`, `data`;
- **silent** (`content_available: true`): APNs `apns-push-type: background`, priority 5,
  `aps = {"content-available": 1}`; FCM a data-only message of normal priority. Nothing
  visible is allowed, nor high priority: Apple throttles or drops such pushes;
- **data-only** (`data_only: true`): Android apps that draw their own notification get only
  `data` (the visible fields folded into it); iOS devices get the visible alert.

`apns` and `android` override blocks are merged over what the common fields render; their
keys are the providers' documented names (Apple's `aps` keys, FCM's AndroidConfig and
AndroidNotification fields), and anything else is refused. What the message turns into on
the wire is pushfan.payloads; the rules checked here are the ones a provider would refuse or
silently drop.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from pushfan import localization
from pushfan.messages import Extras, Localized
from pushfan.messages import Sound as WireSound

MAX_TTL_S = 28 * 24 * 3600  # FCM keeps a message at most 28 days; APNs "some time"
DATA_KEYS = 32
# Keys the rendered payloads use themselves, or the providers reserve (FCM refuses `from`,
# `notification`, `message_type` and anything starting with google / gcm; `aps` is Apple's).
RENDERED_DATA_KEYS = frozenset({"url", "image_url", "alert_id"})
DATA_ONLY_KEYS = frozenset({"title", "subtitle", "body", "image"})
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type", "aps"})
RESERVED_DATA_PREFIXES = ("google", "gcm")

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
DataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SoundName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Score = Annotated[float, Field(ge=0, le=1)]
InterruptionLevel = Literal["passive", "active", "time-sensitive", "critical"]
CollapseId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]

# A locale key: `default`, or a language tag (`fr`, `fr-CA`, `zh-Hant-TW`; `_` allowed).
MAX_LOCALES = 64
DEFAULT_LOCALE = "default"
LocaleKey = Annotated[
    str,
    StringConstraints(
        max_length=35, pattern=r"^(default|[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,3})$"
    ),
]
TextByLocale = Annotated[
    dict[LocaleKey, Text], Field(min_length=1, max_length=MAX_LOCALES + 1, fail_fast=True)
]
LongTextByLocale = Annotated[
    dict[LocaleKey, LongText], Field(min_length=1, max_length=MAX_LOCALES + 1, fail_fast=True)
]
LOCALIZED = ("title", "subtitle", "body")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provided(Strict):
    """An override block: the provider's types exactly (no "yes" for true, no "3" for 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError("must be an https:// URL")
    return value


class Sound(Strict):
    """A named sound; `critical` plays it even when muted (Apple's critical-alert
    entitlement), at `volume` 0..1."""

    name: SoundName
    critical: bool = False
    volume: Score | None = None


# ---- the apns override block: Apple's header names (lower case, as fields) and aps keys.


class ApsAlert(Provided):
    title: str | None = None
    subtitle: str | None = None
    body: str | None = None
    launch_image: str | None = Field(None, alias="launch-image")
    title_loc_key: str | None = Field(None, alias="title-loc-key")
    title_loc_args: list[str] | None = Field(
        None, alias="title-loc-args", max_length=32, fail_fast=True
    )
    subtitle_loc_key: str | None = Field(None, alias="subtitle-loc-key")
    subtitle_loc_args: list[str] | None = Field(
        None, alias="subtitle-loc-args", max_length=32, fail_fast=True
    )
    loc_key: str | None = Field(None, alias="loc-key")
    loc_args: list[str] | None = Field(None, alias="loc-args", fail_fast=True)


class ApsSound(Provided):
    critical: Literal[0, 1] | None = None
    name: SoundName
    volume: Score | None = None


class Aps(Provided):
    """The `aps` keys Apple documents for alert and background pushes."""

    alert: str | ApsAlert | None = None
    badge: Annotated[int, Field(ge=0)] | None = None
    sound: SoundName | ApsSound | None = None
    thread_id: Name | None = Field(None, alias="thread-id")
    category: Name | None = None
    content_available: Literal[1] | None = Field(None, alias="content-available")
    mutable_content: Literal[0, 1] | None = Field(None, alias="mutable-content")
    target_content_id: str | None = Field(None, alias="target-content-id")
    interruption_level: InterruptionLevel | None = Field(None, alias="interruption-level")
    relevance_score: Score | None = Field(None, alias="relevance-score")
    filter_criteria: str | None = Field(None, alias="filter-criteria")

    def rendered(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ApnsOverride(Provided):
    """Merged over the rendered APNs request: its headers (`apns-push-type`,
    `apns-priority`, `apns-expiration`, `apns-collapse-id`) and `aps` keys."""

    push_type: Literal["alert", "background"] | None = None
    priority: Literal[10, 5, 1] | None = None
    expiration: Annotated[int, Field(ge=0)] | None = None
    collapse_id: CollapseId | None = None
    aps: Aps | None = None

    @field_validator("collapse_id")
    @classmethod
    def _collapse_bytes(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > 64:
            raise ValueError("apns-collapse-id is at most 64 bytes")
        return value


# ---- the android override block: FCM HTTP v1 AndroidConfig / AndroidNotification names.

FcmDuration = Annotated[str, StringConstraints(pattern=r"^\d{1,7}(\.\d{1,9})?s$")]


LocArgs = Annotated[list[str], Field(max_length=32, fail_fast=True)]


class AndroidNotification(Provided):
    """`*_loc_key` / `*_loc_args` name the app's own string resources: the phone localizes."""

    title: str | None = None
    body: str | None = None
    title_loc_key: Name | None = None
    title_loc_args: LocArgs | None = None
    body_loc_key: Name | None = None
    body_loc_args: LocArgs | None = None
    icon: str | None = None
    color: Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")] | None = None
    sound: SoundName | None = None
    tag: Name | None = None
    click_action: Name | None = None
    channel_id: Name | None = None
    ticker: str | None = None
    sticky: bool | None = None
    local_only: bool | None = None
    default_sound: bool | None = None
    notification_priority: (
        Literal["PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"]
        | None
    ) = None
    visibility: Literal["PRIVATE", "PUBLIC", "SECRET"] | None = None
    notification_count: Annotated[int, Field(ge=0)] | None = None
    image: str | None = None

    @field_validator("image")
    @classmethod
    def _https_image(cls, value: str | None) -> str | None:
        return value if value is None else https_url(value)


class AndroidOverride(Provided):
    priority: Literal["NORMAL", "HIGH"] | None = None
    ttl: FcmDuration | None = None
    collapse_key: CollapseId | None = None
    notification: AndroidNotification | None = None

    @field_validator("ttl")
    @classmethod
    def _ttl_range(cls, value: str | None) -> str | None:
        if value is not None and float(value[:-1]) > MAX_TTL_S:
            raise ValueError(f"android.ttl is at most {MAX_TTL_S}s (28 days)")
        return value


VISIBLE = (
    "title",
    "subtitle",
    "body",
    "badge",
    "sound",
    "image",
    "category",
    "thread_id",
    "interruption_level",
    "relevance_score",
)


class Message(Strict):
    """What the phone shows (or, silent, what the app gets) and for how long it may wait."""

    title: Text | TextByLocale | None = Field(
        None,
        description='a text, or texts by locale with a "default" ({"default": ..., '
        '"fr": ..., "fr-CA": ...}); each device gets its best match: fr-CA, fr, default',
    )
    subtitle: Text | TextByLocale | None = None
    body: LongText | LongTextByLocale | None = None
    data: dict[DataKey, str] = Field(default_factory=dict, max_length=DATA_KEYS, fail_fast=True)
    badge: Annotated[int, Field(ge=0, le=99_999)] | Literal["clear"] | None = Field(
        None, description='app icon badge; 0 or "clear" removes it, absent leaves it'
    )
    sound: SoundName | Sound | None = Field(
        None, description='a sound name ("default": the system sound), or {name, critical, volume}'
    )
    image: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        None, description="https URL: FCM notification.image; APNs mutable-content + image_url"
    )
    category: Name | None = Field(None, description="APNs category; FCM click_action")
    thread_id: Name | None = Field(None, description="APNs thread-id; FCM android tag")
    interruption_level: InterruptionLevel | None = None
    relevance_score: Score | None = None
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        None, description='deep link, carried as data key "url" on both platforms'
    )
    content_available: bool = Field(False, description="silent (background) push")
    data_only: bool = Field(False, description="FCM gets data only; iOS a visible alert")
    apns: ApnsOverride | None = None
    android: AndroidOverride | None = None
    ttl: int = Field(3600, ge=1, le=MAX_TTL_S, description="seconds the push stays valid")
    priority: Literal["high", "normal"] | None = Field(
        None, description="default: high, or normal for a silent push"
    )

    @field_validator("image")
    @classmethod
    def _https_image(cls, value: str | None) -> str | None:
        return value if value is None else https_url(value)

    @field_validator(*LOCALIZED)
    @classmethod
    def _by_locale(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if not isinstance(value, dict):
            return value
        if DEFAULT_LOCALE not in value:
            raise ValueError('texts by locale need a "default" (for devices of other locales)')
        seen: dict[str, str] = {}
        for key in value:
            same = seen.setdefault(localization.normal(key), key)
            if same != key:
                raise ValueError(f"locales {same!r} and {key!r} are the same locale")
        return value

    def text(self, name: str) -> str | None:
        """`title`, `subtitle` or `body` in the default locale."""
        value: str | dict[str, str] | None = getattr(self, name)
        return value.get(DEFAULT_LOCALE) if isinstance(value, dict) else value

    def locales(self) -> dict[str, Localized]:
        """The content by locale beside the default, keyed by normal form."""
        by_locale: dict[str, dict[str, str]] = {}
        for name in LOCALIZED:
            value = getattr(self, name)
            if isinstance(value, dict):
                for key, text in value.items():
                    if key != DEFAULT_LOCALE:
                        by_locale.setdefault(localization.normal(key), {})[name] = text
        return {key: Localized(**fields) for key, fields in sorted(by_locale.items())}

    @field_validator("url")
    @classmethod
    def _deep_link(cls, value: str | None) -> str | None:
        if value is not None and not urlsplit(value).scheme:
            raise ValueError("url must be an absolute URL or an app link (scheme://...)")
        return value

    @field_validator("data")
    @classmethod
    def _data_keys(cls, data: dict[str, str]) -> dict[str, str]:
        for key in data:
            if key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
                raise ValueError(f"data key {key!r} is reserved by APNs or FCM")
            if key in RENDERED_DATA_KEYS:
                raise ValueError(f"data key {key!r} is set by pushfan; use the {key} field")
        return data

    @model_validator(mode="after")
    def _rules(self) -> Message:
        for rule in (_silent_rules, _visible_rules, _data_only_rules):
            reason = rule(self)
            if reason:
                raise ValueError(reason)
        return self

    @property
    def resolved_priority(self) -> Literal["high", "normal"]:
        if self.priority is not None:
            return self.priority
        return "normal" if self.content_available else "high"

    def extras(self) -> Extras | None:
        """Everything beyond title, body, data and priority, for the wire (None if nothing)."""
        sound = self.sound
        extras = Extras(
            subtitle=self.text("subtitle") or "",
            badge=None if self.badge is None else (0 if self.badge == "clear" else self.badge),
            sound=None
            if sound is None
            else WireSound(name=sound)
            if isinstance(sound, str)
            else WireSound(name=sound.name, critical=sound.critical, volume=sound.volume),
            image=self.image or "",
            category=self.category or "",
            thread_id=self.thread_id or "",
            interruption_level=self.interruption_level or "",
            relevance_score=self.relevance_score,
            url=self.url or "",
            content_available=self.content_available,
            data_only=self.data_only,
            apns=_override(self.apns),
            android=_override(self.android),
            locales=self.locales(),
        )
        return None if extras == Extras() else extras


def _override(block: ApnsOverride | AndroidOverride | None) -> dict[str, Any]:
    if block is None:
        return {}
    return block.model_dump(by_alias=True, exclude_none=True)


def _present(message: Message, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if getattr(message, name) is not None]


def _silent_rules(m: Message) -> str | None:
    if not m.content_available:
        return None
    if m.data_only:
        return "content_available and data_only exclude each other (a silent push is data-only)"
    visible = _present(m, VISIBLE)
    if visible:
        return (
            f"a silent push (content_available) cannot carry {', '.join(visible)}: Apple "
            "throttles or drops background pushes that show anything"
        )
    if m.priority == "high":
        return "a silent push must have priority normal: APNs background pushes need priority 5"
    return _silent_apns_rules(m.apns) or _silent_android_rules(m.android)


def _silent_apns_rules(apns: ApnsOverride | None) -> str | None:
    if apns is None:
        return None
    if apns.priority not in (None, 5):
        return "a silent push must have apns.priority 5 (Apple's rule for background pushes)"
    if apns.push_type == "alert":
        return "a silent push has apns.push_type background, not alert"
    aps = apns.aps
    shown = [k for k in ("alert", "badge", "sound") if aps and getattr(aps, k) is not None]
    return f"a silent push cannot set apns.aps.{shown[0]}" if shown else None


def _silent_android_rules(android: AndroidOverride | None) -> str | None:
    if android is None:
        return None
    if android.priority == "HIGH":
        return "a silent push is a normal-priority FCM data message: android.priority HIGH"
    if android.notification is not None:
        return "a silent push is data-only on FCM: it cannot have android.notification"
    return None


def _visible_rules(m: Message) -> str | None:
    if m.content_available:
        return None
    missing = [name for name in ("title", "body") if getattr(m, name) is None]
    if missing:
        return (
            f"a visible push needs a title and a body; {' and '.join(missing)} missing "
            "(or set content_available for a silent push)"
        )
    if m.apns is not None:
        if m.apns.push_type == "background":
            return "apns.push_type background is a silent push: set content_available instead"
        if m.apns.aps is not None and m.apns.aps.content_available is not None:
            return "apns.aps.content-available is a silent push: set content_available instead"
    return None


def _data_only_rules(m: Message) -> str | None:
    if not m.data_only:
        return None
    if m.android is not None and m.android.notification is not None:
        return "a data-only message has no android.notification (the app draws it)"
    clash = sorted(DATA_ONLY_KEYS & m.data.keys())
    if clash:
        return f"data_only folds {clash[0]} into data; data cannot also have key {clash[0]!r}"
    return None
