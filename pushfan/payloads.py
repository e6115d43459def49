"""Provider payloads, rendered once per batch: only the device token differs per push.

APNs takes the JSON body as is and the token in the path. FCM's body holds the token, so it
is rendered as two byte strings with the token spliced between them.
"""

from __future__ import annotations

import time

import orjson

from pushfan.messages import Notification

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


def apns_body(n: Notification) -> bytes:
    aps = {"alert": {"title": n.title, "body": n.body}, "sound": "default"}
    doc: dict[str, object] = {"aps": aps, **n.data}
    if n.collapse_id:
        doc["alert_id"] = n.collapse_id
    return orjson.dumps(doc)


def apns_priority(n: Notification) -> str:
    return "10" if n.priority == "high" else "5"


def ttl_seconds(n: Notification, now: float | None = None) -> int:
    """Seconds the push may still wait at the provider (never negative)."""
    if not n.expires_at:
        return 0
    return max(0, int(n.expires_at - (now if now is not None else time.time())))


def fcm_message(n: Notification, token: str, now: float | None = None) -> dict[str, object]:
    android: dict[str, object] = {
        "priority": "HIGH" if n.priority == "high" else "NORMAL",
        "ttl": f"{ttl_seconds(n, now)}s",
    }
    if n.collapse_id:
        android["collapse_key"] = n.collapse_id
    data = dict(n.data)
    if n.collapse_id:
        data["alert_id"] = n.collapse_id
    message: dict[str, object] = {
        "token": token,
        "notification": {"title": n.title, "body": n.body},
        "android": android,
    }
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
    # FCM counts the message without the token; measure with a typical token's length.
    fcm = len(before) + len(after) + 163
    if fcm > MAX_PAYLOAD_BYTES:
        return f"rendered FCM message is {fcm} bytes; the limit is {MAX_PAYLOAD_BYTES}"
    return None
