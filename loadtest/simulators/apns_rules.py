"""What the APNs simulator checks in a push beyond its headers: the payload against the push
type and priority, as Apple documents them.

Apple answers most of these mistakes with 200 and then throttles or drops the push on the
device; the simulator refuses them instead, so a test sees the mistake. The reasons are
Apple's where Apple has one (`BadPriority`, `PayloadEmpty`, `PayloadTooLarge`), else this
simulator's own `BadPayload`.

- `background`: priority 5, `aps` has `content-available: 1` and no `alert`, `sound` or
  `badge`;
- `alert`: `aps` has an `alert`, `sound` or `badge`;
- `aps` keys are Apple's (`alert`, `badge`, `sound`, `thread-id`, `category`,
  `content-available`, `mutable-content`, `target-content-id`, `interruption-level`,
  `relevance-score`, `filter-criteria`, and the Live Activity keys for that push type), with
  their types: `badge` an integer >= 0, `sound` a name or `{name, critical 0|1, volume 0..1}`,
  `interruption-level` one of passive, active, time-sensitive, critical, `relevance-score`
  in 0..1;
- an `image_url` (pushfan's key for a notification service extension) is an https URL and
  comes with `mutable-content: 1`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

APS_KEYS = frozenset(
    {
        "alert",
        "badge",
        "sound",
        "thread-id",
        "category",
        "content-available",
        "mutable-content",
        "target-content-id",
        "interruption-level",
        "relevance-score",
        "filter-criteria",
        # Live Activities (push type liveactivity)
        "timestamp",
        "event",
        "content-state",
        "stale-date",
        "dismissal-date",
        "attributes-type",
        "attributes",
    }
)
ALERT_KEYS = frozenset(
    {
        "title",
        "subtitle",
        "body",
        "launch-image",
        "title-loc-key",
        "title-loc-args",
        "subtitle-loc-key",
        "subtitle-loc-args",
        "loc-key",
        "loc-args",
    }
)
INTERRUPTION_LEVELS = frozenset({"passive", "active", "time-sensitive", "critical"})
VISIBLE = ("alert", "sound", "badge")
IMAGE_KEY = "image_url"


def payload_refusal(payload: dict[str, Any], push_type: str, priority: str) -> str | None:
    """None when the payload fits the push type and priority, else the reason to answer."""
    aps = payload["aps"]
    if push_type == "background":
        if priority != "5":
            return "BadPriority"
        if aps.get("content-available") != 1 or any(k in aps for k in VISIBLE):
            return "BadPayload"
    elif push_type == "alert" and not any(k in aps for k in VISIBLE):
        return "BadPayload"
    if not _aps_ok(aps):
        return "BadPayload"
    image = payload.get(IMAGE_KEY)
    if image is not None and (not _https(image) or aps.get("mutable-content") != 1):
        return "BadPayload"
    return None


def _aps_ok(aps: dict[str, Any]) -> bool:
    if not aps.keys() <= APS_KEYS:
        return False
    alert = aps.get("alert")
    if alert is not None and not isinstance(alert, str):
        if not isinstance(alert, dict) or not alert.keys() <= ALERT_KEYS:
            return False
    badge = aps.get("badge")
    if badge is not None and (type(badge) is not int or badge < 0):
        return False
    if "sound" in aps and not _sound_ok(aps["sound"]):
        return False
    level = aps.get("interruption-level")
    if level is not None and level not in INTERRUPTION_LEVELS:
        return False
    score = aps.get("relevance-score")
    if score is not None and not (_number(score) and 0 <= score <= 1):
        return False
    return all(aps.get(k) in (None, 0, 1) for k in ("content-available", "mutable-content"))


def _sound_ok(sound: Any) -> bool:
    if isinstance(sound, str):
        return True
    if not isinstance(sound, dict) or not isinstance(sound.get("name"), str):
        return False
    if not sound.keys() <= {"name", "critical", "volume"}:
        return False
    volume = sound.get("volume", 0)
    return sound.get("critical", 0) in (0, 1) and _number(volume) and 0 <= volume <= 1


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _https(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)
