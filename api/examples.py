"""OpenAPI examples of each message kind (docs/messages.md explains them), for the trigger
routes' request bodies."""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import Example

MESSAGES: dict[str, dict[str, Any]] = {
    "plain": {"title": "Storm warning", "body": "Stay indoors until 18:00.", "ttl": 3600},
    "rich": {
        "title": "Flash sale",
        "subtitle": "Today only",
        "body": "50% off everything",
        "badge": 3,
        "sound": "ping.caf",
        "image": "https://img.example.com/sale.png",
        "category": "REPLY",
        "thread_id": "promo",
        "interruption_level": "time-sensitive",
        "relevance_score": 0.8,
        "url": "shop://sale/42",
        "data": {"campaign": "c42"},
    },
    "silent": {"content_available": True, "data": {"sync": "inbox"}},
    "data_only": {
        "title": "New message",
        "body": "Hi!",
        "data_only": True,
        "data": {"chat": "42"},
    },
    "overrides": {
        "title": "Goal!",
        "body": "2-1",
        "sound": "goal.caf",
        "apns": {
            "priority": 5,
            "collapse_id": "match-7",
            "aps": {"alert": {"launch-image": "goal.png"}},
        },
        "android": {
            "priority": "NORMAL",
            "ttl": "600s",
            "collapse_key": "match-7",
            "notification": {"channel_id": "scores", "color": "#00aa00", "sticky": False},
        },
    },
}

SUMMARIES = {
    "plain": "a visible alert: title and body",
    "rich": "a rich alert: subtitle, badge, sound, image, category, thread, deep link",
    "silent": "a silent (background) push: content_available, data only",
    "data_only": "data-only on Android, a visible alert on iOS",
    "overrides": "per-platform overrides: apns and android blocks",
}


def examples(extra: dict[str, Any]) -> dict[str, Example]:
    """Each message kind, with `extra` (an audience or the targets) added."""
    return {
        name: Example(summary=SUMMARIES[name], value={**body, **extra})
        for name, body in MESSAGES.items()
    }


# Beside the message kinds: when to send (README, Scheduled alerts).
SCHEDULED: dict[str, tuple[str, dict[str, Any]]] = {
    "scheduled": (
        "scheduled: sent at send_at (RFC 3339 with an offset, at most 30 days ahead)",
        {**MESSAGES["plain"], "send_at": "2026-12-24T18:00:00Z"},
    )
}


def with_schedule(extra: dict[str, Any]) -> dict[str, Example]:
    """Each message kind with `extra`, and a scheduled one."""
    found = examples(extra)
    for name, (summary, body) in SCHEDULED.items():
        found[name] = Example(summary=summary, value={**body, **extra})
    return found


# Alerts only (README, Canary and automatic pause).
ALERT_ONLY: dict[str, tuple[str, dict[str, Any]]] = {
    "canary": (
        "canary: 1,000 devices first; paused if more than 5% of them fail "
        "(POST /v1/alerts/{id}/resume sends the rest)",
        {**MESSAGES["plain"], "canary": {"devices": 1000, "max_failure_ratio": 0.05}},
    )
}

_AUDIENCE = {"audience": {"platforms": ["ios", "android"]}}
ALERTS = with_schedule(_AUDIENCE) | {
    name: Example(summary=summary, value={**body, **_AUDIENCE})
    for name, (summary, body) in ALERT_ONLY.items()
}
NOTIFICATIONS = with_schedule({"to": {"device_ids": [1, 2, 3]}})
