"""The message model (pushfan.content) rendered per provider (pushfan.payloads): each kind
of message carries exactly its documented fields. Pure functions, no services."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pushfan import payloads
from pushfan.content import Message
from pushfan.messages import Notification, decode_batch, encode

ALERT_ID = "0b6c2f0e-7d55-4d1b-8f7e-3d3c1b7a9e21"
EXPIRES = 2_000_000_000


def wire(**fields: Any) -> Notification:
    """What the sender gets for this request body, through the broker's encoding."""
    m = Message(**fields)
    n = Notification(
        title=m.text("title") or "",
        body=m.text("body") or "",
        data=m.data,
        priority=m.resolved_priority,
        expires_at=EXPIRES,
        collapse_id=ALERT_ID,
        extras=m.extras(),
    )
    batch = decode_batch(
        encode(
            {
                "alert_id": ALERT_ID,
                "batch_id": "b",
                "provider": "apns",
                "app": "alpha",
                "notification": n,
                "device_ids": [],
                "tokens": [],
            }
        )
    )
    assert batch.notification == n
    return n


def fcm(n: Notification) -> dict[str, Any]:
    message: dict[str, Any] = payloads.fcm_message(n, "TOKEN", now=EXPIRES - 60)["message"]  # type: ignore[assignment]
    return message


def test_a_plain_alert_renders_as_before() -> None:
    """title + body only: the payloads pushfan sent before the message model."""
    n = wire(title="Hello", body="World", data={"k": "v"})
    assert n.extras is None
    r = payloads.apns_request(n)
    assert orjson.loads(r.body) == {
        "aps": {"alert": {"title": "Hello", "body": "World"}, "sound": "default"},
        "k": "v",
        "alert_id": ALERT_ID,
    }
    assert (r.push_type, r.priority, r.expiration, r.collapse_id) == (
        "alert",
        "10",
        str(EXPIRES),
        ALERT_ID,
    )
    assert fcm(n) == {
        "token": "TOKEN",
        "notification": {"title": "Hello", "body": "World"},
        "android": {"priority": "HIGH", "ttl": "60s", "collapse_key": ALERT_ID},
        "data": {"k": "v", "alert_id": ALERT_ID},
    }


def test_a_rich_alert_carries_every_field_on_both_providers() -> None:
    n = wire(
        title="Sale",
        subtitle="Today only",
        body="50% off",
        badge=3,
        sound="ping.caf",
        image="https://img.example.com/sale.png",
        category="REPLY",
        thread_id="promo",
        interruption_level="time-sensitive",
        relevance_score=0.8,
        url="shop://sale/42",
    )
    r = payloads.apns_request(n)
    assert orjson.loads(r.body) == {
        "aps": {
            "alert": {"title": "Sale", "subtitle": "Today only", "body": "50% off"},
            "badge": 3,
            "sound": "ping.caf",
            "thread-id": "promo",
            "category": "REPLY",
            "interruption-level": "time-sensitive",
            "relevance-score": 0.8,
            "mutable-content": 1,
        },
        "url": "shop://sale/42",
        "image_url": "https://img.example.com/sale.png",
        "alert_id": ALERT_ID,
    }
    assert (r.push_type, r.priority) == ("alert", "10")
    assert fcm(n) == {
        "token": "TOKEN",
        "notification": {
            "title": "Sale",
            "body": "50% off",
            "image": "https://img.example.com/sale.png",
        },
        "android": {
            "priority": "HIGH",
            "ttl": "60s",
            "collapse_key": ALERT_ID,
            "notification": {
                "sound": "ping.caf",
                "tag": "promo",
                "click_action": "REPLY",
                "notification_count": 3,
            },
        },
        "data": {"url": "shop://sale/42", "alert_id": ALERT_ID},
    }


def test_badge_clear_and_critical_sound() -> None:
    n = wire(
        title="t",
        body="b",
        badge="clear",
        sound={"name": "alarm.caf", "critical": True, "volume": 0.5},
        interruption_level="critical",
    )
    aps = orjson.loads(payloads.apns_body(n))["aps"]
    assert aps["badge"] == 0
    assert aps["sound"] == {"name": "alarm.caf", "critical": 1, "volume": 0.5}
    assert fcm(n)["android"]["notification"] == {"sound": "alarm.caf", "notification_count": 0}


def test_a_silent_push_is_background_priority_5_and_data_only_on_fcm() -> None:
    n = wire(content_available=True, data={"sync": "inbox"})
    assert n.priority == "normal"
    r = payloads.apns_request(n)
    assert orjson.loads(r.body) == {
        "aps": {"content-available": 1},
        "sync": "inbox",
        "alert_id": ALERT_ID,
    }
    assert (r.push_type, r.priority) == ("background", "5")
    assert fcm(n) == {
        "token": "TOKEN",
        "android": {"priority": "NORMAL", "ttl": "60s", "collapse_key": ALERT_ID},
        "data": {"sync": "inbox", "alert_id": ALERT_ID},
    }


def test_data_only_folds_the_visible_fields_into_fcm_data_and_stays_visible_on_ios() -> None:
    n = wire(
        title="New message",
        body="Hi!",
        image="https://img.example.com/a.png",
        data_only=True,
        data={"chat": "42"},
    )
    message = fcm(n)
    assert "notification" not in message and "notification" not in message["android"]
    assert message["data"] == {
        "chat": "42",
        "title": "New message",
        "body": "Hi!",
        "image": "https://img.example.com/a.png",
        "alert_id": ALERT_ID,
    }
    apns = payloads.apns_request(n)
    assert apns.push_type == "alert"
    assert orjson.loads(apns.body)["aps"]["alert"] == {"title": "New message", "body": "Hi!"}


def test_overrides_are_merged_over_the_common_fields() -> None:
    n = wire(
        title="t",
        body="b",
        sound="ping.caf",
        apns={
            "priority": 5,
            "expiration": 1_900_000_000,
            "collapse_id": "scores",
            "aps": {"alert": {"launch-image": "l.png"}, "sound": "other.caf"},
        },
        android={
            "priority": "NORMAL",
            "ttl": "30s",
            "collapse_key": "scores",
            "notification": {"channel_id": "news", "color": "#ff8800", "sticky": True},
        },
    )
    r = payloads.apns_request(n)
    aps = orjson.loads(r.body)["aps"]
    assert aps["alert"] == {"title": "t", "body": "b", "launch-image": "l.png"}
    assert aps["sound"] == "other.caf"
    assert (r.priority, r.expiration, r.collapse_id) == ("5", "1900000000", "scores")
    android = fcm(n)["android"]
    assert android == {
        "priority": "NORMAL",
        "ttl": "30s",
        "collapse_key": "scores",
        "notification": {
            "sound": "ping.caf",
            "channel_id": "news",
            "color": "#ff8800",
            "sticky": True,
        },
    }


def test_the_fcm_body_splits_around_any_token() -> None:
    n = wire(title="t", body="b", badge=1, android={"notification": {"channel_id": "c"}})
    before, after = payloads.fcm_body_parts(n, now=EXPIRES - 60)
    assert orjson.loads(before + b"TOKEN" + after)["message"] == fcm(n)


def test_the_size_check_runs_on_the_rendered_payload_after_the_merge() -> None:
    """Under the limit alone, over it once the override's localisation args are merged."""
    args = ["x" * 100] * 40
    n = wire(title="t", body="b", apns={"aps": {"alert": {"loc-key": "K", "loc-args": args}}})
    reason = payloads.oversize_reason(n)
    assert reason is not None and reason.startswith("rendered APNs payload is")
    assert "4096" in reason
    assert payloads.oversize_reason(wire(title="t", body="b")) is None


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"title": "t", "body": "b", "apns": {"aps": {"alert-title": "x"}}},
            "apns.aps.alert-title",
        ),
        ({"title": "t", "body": "b", "android": {"notification": {"colour": "red"}}}, "colour"),
        ({"title": "t", "body": "b", "android": {"notification": {"sticky": "yes"}}}, "sticky"),
    ],
)
def test_unknown_or_mistyped_override_keys_are_refused(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Message(**fields)
    assert says in str(refused.value)
