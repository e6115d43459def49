"""Provider payloads, rendered once per batch: only the device token differs per push.

APNs takes the JSON body as is and the token in the path; its headers come from
`apns_request`. FCM's body holds the token, so it is rendered as two byte strings with the
token spliced between them.

What each message kind renders to (pushfan.content validates the combinations):

- visible: APNs push type `alert`, priority 10 (5 if `normal`), `aps.alert` {title,
  subtitle, body}, `sound` ("default" unless named), `badge`, `thread-id`, `category`,
  `interruption-level`, `relevance-score`; an `image` sets `mutable-content: 1` and the
  top-level key `image_url` for the app's notification service extension. FCM
  `notification` {title, body, image}, `android.notification` {sound, tag = thread_id,
  click_action = category, notification_count = badge}.
- silent: APNs push type `background`, priority 5, `aps = {"content-available": 1}`; FCM no
  `notification`, `android.priority` NORMAL.
- data-only: APNs as visible; FCM no `notification`, and `title`, `subtitle`, `body`,
  `image` become data keys.

On both, `data`, `url` (the deep link) and `alert_id` (the collapse id) are top-level keys
(APNs) or `data` entries (FCM); the `apns` and `android` override blocks are merged last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from pushfan.messages import Extras, Notification

MAX_PAYLOAD_BYTES = 4096  # APNs and FCM both refuse larger payloads

# Keys a notification's `data` may not use, each with who reserves it. `aps` is APNs's own
# dictionary; FCM refuses `from`, `message_type` and anything starting with `google` or
# `gcm` (HTTP v1 Message.data), and its legacy reserved `notification` and `collapse_key`;
# `alert_id` is the collapse id pushfan adds to both payloads itself.
RESERVED_DATA_KEYS = {
    "aps": "APNs",
    "from": "FCM",
    "message_type": "FCM",
    "notification": "FCM",
    "collapse_key": "FCM",
    "alert_id": "pushfan",
}
RESERVED_DATA_PREFIXES = {"google": "FCM", "gcm": "FCM"}


def reserved_data_key(data: dict[str, str]) -> str | None:
    """Why one of these `data` keys cannot be sent (the first such key), or None."""
    for key in data:
        owner = RESERVED_DATA_KEYS.get(key)
        if owner is None:
            owner = next(
                (who for p, who in RESERVED_DATA_PREFIXES.items() if key.lower().startswith(p)),
                None,
            )
        if owner is not None:
            return f"data key {key!r} is reserved by {owner}"
    return None


FCM_TOKEN_PLACEHOLDER = "\x00TOKEN\x00"
LONGEST_FCM_TOKEN = 4096
TYPICAL_FCM_TOKEN = 163  # FCM counts the message without the token; sizes use this length
IMAGE_KEY = "image_url"  # the APNs payload key the app's service extension downloads
URL_KEY = "url"
ALERT_ID_KEY = "alert_id"
_NO_EXTRAS = Extras()


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    """Everything of an APNs request but the token and apns-id, once per batch."""

    body: bytes
    push_type: str  # apns-push-type
    priority: str  # apns-priority
    expiration: str  # apns-expiration (0: now or never)
    collapse_id: str  # apns-collapse-id ("" = none)


def _extras(n: Notification) -> Extras:
    return n.extras if n.extras is not None else _NO_EXTRAS


def _present(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The pairs whose value is set (not "" and not None)."""
    return {key: value for key, value in pairs if value is not None and value != ""}


def _apns_sound(x: Extras) -> str | dict[str, Any]:
    if x.sound is None:
        return "default"
    if not (x.sound.critical or x.sound.volume is not None):
        return x.sound.name
    sound = {"name": x.sound.name, "critical": 1 if x.sound.critical else None}
    return _present((*sound.items(), ("volume", x.sound.volume)))


def _visible_aps(n: Notification, x: Extras) -> dict[str, Any]:
    aps: dict[str, Any] = {
        "alert": _present((("title", n.title), ("subtitle", x.subtitle), ("body", n.body)))
    }
    if x.badge is not None:
        aps["badge"] = x.badge
    aps["sound"] = _apns_sound(x)
    aps |= _present(
        (
            ("thread-id", x.thread_id),
            ("category", x.category),
            ("interruption-level", x.interruption_level),
            ("relevance-score", x.relevance_score),
            ("mutable-content", 1 if x.image else None),
        )
    )
    return aps


def _merge_aps(aps: dict[str, Any], override: dict[str, Any]) -> None:
    """The override's keys replace the rendered ones; an alert dictionary is merged."""
    for key, value in override.items():
        if key == "alert" and isinstance(value, dict) and isinstance(aps.get("alert"), dict):
            aps["alert"] = {**aps["alert"], **value}
        else:
            aps[key] = value


def apns_payload(n: Notification) -> dict[str, Any]:
    x = _extras(n)
    aps = {"content-available": 1} if x.content_available else _visible_aps(n, x)
    _merge_aps(aps, x.apns.get("aps") or {})
    image = x.image if not x.content_available else ""
    extra = ((URL_KEY, x.url), (IMAGE_KEY, image), (ALERT_ID_KEY, n.payload_alert_id))
    return {"aps": aps, **n.data, **_present(extra)}


def apns_body(n: Notification) -> bytes:
    return orjson.dumps(apns_payload(n))


def apns_priority(n: Notification) -> str:
    override = _extras(n).apns.get("priority")
    if override is not None:
        return str(override)
    return "10" if n.priority == "high" else "5"


def apns_push_type(n: Notification) -> str:
    x = _extras(n)
    return str(x.apns.get("push_type", "background" if x.content_available else "alert"))


def apns_request(n: Notification) -> ApnsRequest:
    x = _extras(n)
    return ApnsRequest(
        body=apns_body(n),
        push_type=apns_push_type(n),
        priority=apns_priority(n),
        expiration=str(x.apns.get("expiration", n.expires_at or 0)),
        collapse_id=str(x.apns.get("collapse_id", n.collapse_id)),
    )


def ttl_seconds(n: Notification, now: float | None = None) -> int:
    """Seconds the push may still wait at the provider (never negative)."""
    if not n.expires_at:
        return 0
    return max(0, int(n.expires_at - (now if now is not None else time.time())))


def _fcm_shown(n: Notification, x: Extras) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `notification` block and the `android.notification` fields of a visible push."""
    notification = _present((("title", n.title), ("body", n.body), ("image", x.image)))
    shown = _present(
        (
            ("sound", x.sound.name if x.sound is not None else None),
            ("tag", x.thread_id),
            ("click_action", x.category),
            ("notification_count", x.badge),
        )
    )
    return notification, shown


def fcm_message(n: Notification, token: str, now: float | None = None) -> dict[str, object]:
    x = _extras(n)
    android: dict[str, Any] = {
        "priority": "HIGH" if n.priority == "high" else "NORMAL",
        "ttl": f"{ttl_seconds(n, now)}s",
    }
    if n.collapse_id:
        android["collapse_key"] = n.collapse_id
    data = dict(n.data)
    message: dict[str, Any] = {"token": token}
    if x.data_only:
        folded = (
            ("title", n.title),
            ("subtitle", x.subtitle),
            ("body", n.body),
            ("image", x.image),
        )
        data |= _present(folded)
    elif not x.content_available:
        message["notification"], shown = _fcm_shown(n, x)
        if shown:
            android["notification"] = shown
    data |= _present(((URL_KEY, x.url), (ALERT_ID_KEY, n.payload_alert_id)))
    for key, value in x.android.items():
        if key == "notification":
            android["notification"] = {**android.get("notification", {}), **value}
        else:
            android[key] = value
    message["android"] = android
    if data:
        message["data"] = data
    return {"message": message}


def fcm_body_parts(n: Notification, now: float | None = None) -> tuple[bytes, bytes]:
    """(before, after): the FCM body for any token is before + token + after."""
    rendered = orjson.dumps(fcm_message(n, FCM_TOKEN_PLACEHOLDER, now))
    placeholder = orjson.dumps(FCM_TOKEN_PLACEHOLDER)[1:-1]
    before, after = rendered.split(placeholder, 1)
    return before, after


def oversize_reason(n: Notification) -> str | None:
    """Why this notification cannot be sent to some provider, or None if it fits both."""
    apns = len(apns_body(n))
    if apns > MAX_PAYLOAD_BYTES:
        return f"rendered APNs payload is {apns} bytes; the limit is {MAX_PAYLOAD_BYTES}"
    before, after = fcm_body_parts(n)
    fcm = len(before) + len(after) + TYPICAL_FCM_TOKEN
    if fcm > MAX_PAYLOAD_BYTES:
        return f"rendered FCM message is {fcm} bytes; the limit is {MAX_PAYLOAD_BYTES}"
    return None
