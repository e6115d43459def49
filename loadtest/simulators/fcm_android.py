"""Validation of an FCM HTTP v1 message's `notification` and `android` blocks: field names and
types as Google's reference for Notification, AndroidConfig and AndroidNotification states
them (snake_case, the proto field names; lowerCamelCase is accepted too, as Google does).

Returns the INVALID_ARGUMENT message for the first problem, or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Check = Callable[[Any], bool]


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _one_of(*values: str) -> Check:
    """An enum: Google's parser takes its names in any case (FCM's own examples send
    "priority": "high")."""
    return lambda value: isinstance(value, str) and value.upper() in values


def _https(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)


_DURATION = re.compile(r"\d{1,11}(\.\d{1,9})?s")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def _duration(value: Any) -> bool:
    return isinstance(value, str) and _DURATION.fullmatch(value) is not None


def _color(value: Any) -> bool:
    return isinstance(value, str) and _COLOR.fullmatch(value) is not None


def _object(value: Any) -> bool:
    return isinstance(value, dict)


NOTIFICATION: dict[str, Check] = {"title": _str, "body": _str, "image": _https}
ANDROID: dict[str, Check] = {
    "collapse_key": _str,
    "priority": _one_of("NORMAL", "HIGH"),
    "ttl": _duration,
    "restricted_package_name": _str,
    "data": _object,
    "notification": _object,
    "fcm_options": _object,
    "direct_boot_ok": _bool,
}
ANDROID_NOTIFICATION: dict[str, Check] = {
    "title": _str,
    "body": _str,
    "icon": _str,
    "color": _color,
    "sound": _str,
    "tag": _str,
    "click_action": _str,
    "body_loc_key": _str,
    "body_loc_args": _strings,
    "title_loc_key": _str,
    "title_loc_args": _strings,
    "channel_id": _str,
    "ticker": _str,
    "sticky": _bool,
    "event_time": _str,
    "local_only": _bool,
    "notification_priority": _one_of(
        "PRIORITY_UNSPECIFIED",
        "PRIORITY_MIN",
        "PRIORITY_LOW",
        "PRIORITY_DEFAULT",
        "PRIORITY_HIGH",
        "PRIORITY_MAX",
    ),
    "default_sound": _bool,
    "default_vibrate_timings": _bool,
    "default_light_settings": _bool,
    "vibrate_timings": _strings,
    "visibility": _one_of("VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
    "notification_count": _count,
    "light_settings": _object,
    "image": _https,
    "bypass_proxy_notification": _bool,
    "proxy": _one_of("PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
}


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def block_refusal(block: dict[str, Any], fields: dict[str, Check], where: str) -> str | None:
    for name, value in block.items():
        check = fields.get(_snake(name))
        if check is None:
            return f"Invalid JSON payload received. Unknown name {name!r} at '{where}'."
        if not check(value):
            return f"Invalid value at '{where}.{name}' ({value!r})."
    return None


def android_refusal(message: dict[str, Any]) -> str | None:
    notification = message.get("notification")
    if notification is not None:
        refusal = block_refusal(notification, NOTIFICATION, "message.notification")
        if refusal:
            return refusal
    android = message.get("android")
    if android is None:
        return None
    refusal = block_refusal(android, ANDROID, "message.android")
    if refusal:
        return refusal
    shown = android.get("notification")
    if shown is not None:
        return block_refusal(shown, ANDROID_NOTIFICATION, "message.android.notification")
    return None


def kind(message: dict[str, Any]) -> str:
    """`notification` when the system draws it, `data` when only the app gets it."""
    android = message.get("android") or {}
    shown = "notification" in message or "notification" in android
    return "notification" if shown else "data"
