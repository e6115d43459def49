"""Validation of an FCM HTTP v1 `messages:send` request body, as Google's reference states it
(the `notification` and `android` blocks field by field in fcm_android).

Returns a human message for 400 INVALID_ARGUMENT, or None when the request is valid.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from loadtest.simulators.fcm_android import android_refusal

MAX_PAYLOAD = 4096
TARGETS = ("token", "topic", "condition")
BLOCKS = ("notification", "android", "apns", "webpush")
MESSAGE_FIELDS = frozenset({"name", "data", "fcm_options", "fcmOptions", *TARGETS, *BLOCKS})
REQUEST_FIELDS = frozenset({"message", "validate_only", "validateOnly"})
_TOKEN = re.compile(r"[A-Za-z0-9_:\-]{32,4096}")
_TOPIC = re.compile(r"(/topics/)?[a-zA-Z0-9\-_.~%]{1,900}")


def request_refusal(request: Any) -> str | None:
    if not isinstance(request, dict) or not isinstance(request.get("message"), dict):
        return "Request must be a JSON object with a `message` object."
    unknown = request.keys() - REQUEST_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}."
    validate_only = request.get("validate_only", request.get("validateOnly", False))
    if not isinstance(validate_only, bool):
        return "validate_only must be a boolean."
    return message_refusal(request["message"])


def message_refusal(message: dict[str, Any]) -> str | None:
    unknown = message.keys() - MESSAGE_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r} at 'message'."
    refused = _target_refusal(message) or _data_refusal(message.get("data"))
    if refused is not None:
        return refused
    for block in BLOCKS:
        if block in message and not isinstance(message[block], dict):
            return f"Invalid value at 'message.{block}': must be an object."
    return android_refusal(message)


def _target_refusal(message: dict[str, Any]) -> str | None:
    targets = [name for name in TARGETS if message.get(name) is not None]
    if len(targets) != 1:
        return "Exactly one of token, topic or condition must be set."
    target = message[targets[0]]
    if not isinstance(target, str):
        return f"Invalid value at 'message.{targets[0]}' (TYPE_STRING)."
    if targets[0] == "token" and not _TOKEN.fullmatch(target):
        return "The registration token is not a valid FCM registration token"
    if targets[0] == "topic" and not _TOPIC.fullmatch(target):
        return "Invalid topic name."
    if targets[0] == "condition" and not target.strip():
        return "Invalid condition expression."
    return None


def _data_refusal(data: Any) -> str | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        return "Invalid value at 'message.data' (type.googleapis.com/google.protobuf.Map)."
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            return f"Invalid value at 'message.data[{index}].value' (TYPE_STRING), {value}"
        if key in ("from", "gcm") or key.startswith("google"):
            return f"Invalid data key {key!r}: reserved."
    return None


def payload_too_big(message: dict[str, Any], body_size: int) -> bool:
    """Whether the payload, the message without its target, exceeds FCM's 4096 bytes."""
    if body_size <= MAX_PAYLOAD:  # the common case needs no second serialisation
        return False
    payload = {key: value for key, value in message.items() if key not in TARGETS}
    return len(orjson.dumps(payload)) > MAX_PAYLOAD
