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


def apns_payload(n: Notification) -> dict[str, Any]:
    x = _extras(n)
    aps: dict[str, Any]
    if x.content_available:
        aps = {"content-available": 1}
    else:
        alert = {
            k: v for k, v in (("title", n.title), ("subtitle", x.subtitle), ("body", n.body)) if v
        }
        aps = {"alert": alert}
        if x.badge is not None:
            aps["badge"] = x.badge
        if x.sound is None:
            aps["sound"] = "default"
        elif x.sound.critical or x.sound.volume is not None:
            sound: dict[str, Any] = {"name": x.sound.name}
            if x.sound.critical:
                sound["critical"] = 1
            if x.sound.volume is not None:
                sound["volume"] = x.sound.volume
            aps["sound"] = sound
        else:
            aps["sound"] = x.sound.name
        for key, value in (
            ("thread-id", x.thread_id),
            ("category", x.category),
            ("interruption-level", x.interruption_level),
        ):
            if value:
                aps[key] = value
        if x.relevance_score is not None:
            aps["relevance-score"] = x.relevance_score
        if x.image:
            aps["mutable-content"] = 1
    override = x.apns.get("aps")
    if override:
        for key, value in override.items():
            if key == "alert" and isinstance(value, dict) and isinstance(aps.get("alert"), dict):
                aps["alert"] = {**aps["alert"], **value}
            else:
                aps[key] = value
    doc: dict[str, Any] = {"aps": aps, **n.data}
    if x.url:
        doc[URL_KEY] = x.url
    if x.image and not x.content_available:
        doc[IMAGE_KEY] = x.image
    if n.collapse_id:
        doc[ALERT_ID_KEY] = n.collapse_id
    return doc


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
        for key, value in (
            ("title", n.title),
            ("subtitle", x.subtitle),
            ("body", n.body),
            ("image", x.image),
        ):
            if value:
                data[key] = value
    elif not x.content_available:
        notification = {k: v for k, v in (("title", n.title), ("body", n.body)) if v}
        if x.image:
            notification["image"] = x.image
        message["notification"] = notification
        shown: dict[str, Any] = {}
        if x.sound is not None:
            shown["sound"] = x.sound.name
        if x.thread_id:
            shown["tag"] = x.thread_id
        if x.category:
            shown["click_action"] = x.category
        if x.badge is not None:
            shown["notification_count"] = x.badge
        if shown:
            android["notification"] = shown
    if x.url:
        data[URL_KEY] = x.url
    if n.collapse_id:
        data[ALERT_ID_KEY] = n.collapse_id
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
