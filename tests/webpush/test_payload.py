"""The Web Push payload (pushfan.webpush.payload): the message model's fields in the JSON a
service worker reads with `event.data.json()`, as the README documents it."""

from __future__ import annotations

from typing import Any

import orjson

from pushfan import webpush
from pushfan.content import Message
from pushfan.messages import Notification


def rendered(collapse_id: str = "a1", **fields: Any) -> dict[str, Any]:
    """What a browser decrypts for a message submitted with `fields` (validated as the API
    validates it)."""
    n = _note(collapse_id, **fields)
    doc: dict[str, Any] = orjson.loads(webpush.render(n))
    assert doc == webpush.payload(n)
    return doc


def test_a_plain_alert_keeps_its_four_keys() -> None:
    """Title, body, data and alert id: the shape service workers already read."""
    doc = rendered(title="T", body="B", data={"k": "v"})
    assert doc == {"title": "T", "body": "B", "data": {"k": "v"}, "alert_id": "a1"}


def test_the_rich_fields_render_under_their_documented_names() -> None:
    doc = rendered(
        title="T",
        subtitle="S",
        body="B",
        image="https://cdn.example/i.png",
        url="https://example.com/article/7",
        badge=4,
        thread_id="news",
        category="reply",
        interruption_level="time-sensitive",
    )
    assert doc == {
        "title": "T",
        "body": "B",
        "subtitle": "S",
        "image": "https://cdn.example/i.png",
        "tag": "news",
        "require_interaction": True,
        "category": "reply",
        "app_badge": 4,
        "url": "https://example.com/article/7",
        "alert_id": "a1",
    }


def test_badge_clear_is_zero_and_a_quiet_level_does_not_insist() -> None:
    doc = rendered(title="T", body="B", badge="clear", interruption_level="passive")
    assert doc["app_badge"] == 0
    assert "require_interaction" not in doc


def test_a_silent_push_shows_nothing() -> None:
    """content_available: `silent: true`, the data and the deep link, no visible field."""
    doc = rendered(content_available=True, data={"sync": "1"}, url="app://inbox", priority="normal")
    assert doc == {"silent": True, "url": "app://inbox", "data": {"sync": "1"}, "alert_id": "a1"}


def test_data_only_and_provider_blocks_leave_the_browser_a_visible_alert() -> None:
    """data_only is FCM's; sound and the apns/android blocks have no browser counterpart."""
    doc = rendered(
        title="T",
        body="B",
        data_only=True,
        sound="chime.caf",
        apns={"priority": 5},
        android={"priority": "NORMAL"},
    )
    assert doc == {"title": "T", "body": "B", "alert_id": "a1"}


def test_oversize_counts_the_rich_fields() -> None:
    """The 3,993-byte limit is checked on what is sent, rich fields included."""
    base = {"title": "T", "body": "B" * 1900, "subtitle": "S" * 200}
    assert webpush.oversize_reason(_note(**base)) is None
    big = _note(**base, url="https://example.com/" + "p" * 2020)
    reason = webpush.oversize_reason(big)
    assert reason is not None and "limit is 3993" in reason


def _note(collapse_id: str = "", **fields: Any) -> Notification:
    message = Message(**fields)
    return Notification(
        title=message.text("title") or "",
        body=message.text("body") or "",
        data=message.data,
        priority=message.resolved_priority,
        collapse_id=collapse_id,
        extras=message.extras(),
    )
