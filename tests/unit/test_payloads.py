"""Provider payloads rendered from a Notification (pushfan.payloads)."""

from __future__ import annotations

import orjson
import pytest

from pushfan import payloads, webpush
from pushfan.messages import Notification

NOTE = Notification("Storm", "Stay inside", {"k": "v"}, "high", 1_000_600, "alert-1")


def test_the_apns_body_carries_the_alert_data_and_the_alert_id() -> None:
    assert orjson.loads(payloads.apns_body(NOTE)) == {
        "aps": {"alert": {"title": "Storm", "body": "Stay inside"}, "sound": "default"},
        "k": "v",
        "alert_id": "alert-1",
    }


def test_apns_priority() -> None:
    assert payloads.apns_priority(NOTE) == "10"
    assert payloads.apns_priority(Notification("t", "b", priority="normal")) == "5"


def test_ttl_is_what_is_left_and_never_negative() -> None:
    assert payloads.ttl_seconds(NOTE, now=1_000_000) == 600
    assert payloads.ttl_seconds(NOTE, now=2_000_000) == 0
    assert payloads.ttl_seconds(Notification("t", "b"), now=1_000_000) == 0


def test_the_fcm_message_collapses_by_alert_and_carries_the_ttl() -> None:
    message = payloads.fcm_message(NOTE, "tok", now=1_000_000)["message"]
    assert message == {
        "token": "tok",
        "notification": {"title": "Storm", "body": "Stay inside"},
        "android": {"priority": "HIGH", "ttl": "600s", "collapse_key": "alert-1"},
        "data": {"k": "v", "alert_id": "alert-1"},
    }


def test_an_fcm_message_without_data_has_no_data_block() -> None:
    message = payloads.fcm_message(Notification("t", "b", priority="normal"), "tok", now=0)
    assert "data" not in message["message"]  # type: ignore[operator]
    assert message["message"]["android"]["priority"] == "NORMAL"  # type: ignore[index]


@pytest.mark.parametrize("token", ["abc", "x" * 4096, 'quote"and\\slash'])
def test_fcm_body_parts_around_any_token_are_the_rendered_message(token: str) -> None:
    before, after = payloads.fcm_body_parts(NOTE, now=1_000_000)
    spliced = before + orjson.dumps(token)[1:-1] + after
    assert orjson.loads(spliced) == payloads.fcm_message(NOTE, token, now=1_000_000)


def test_oversize_reason_names_the_provider_whose_limit_is_passed() -> None:
    assert payloads.oversize_reason(NOTE) is None
    huge = Notification("t", "x" * 5000)
    reason = payloads.oversize_reason(huge)
    assert reason is not None and "APNs" in reason and "4096" in reason
    near = Notification("t", "b", {"d": "x" * 3950})  # fits APNs, not FCM with a token
    assert len(payloads.apns_body(near)) <= payloads.MAX_PAYLOAD_BYTES
    fcm = payloads.oversize_reason(near)
    assert fcm is not None and "FCM" in fcm


def test_a_follow_up_replaces_its_original_but_names_itself() -> None:
    """A follow-up collapses onto the original's notification on the phone, while the app
    (and its receipts) see the follow-up's own alert id."""
    follow_up = Notification(
        "Storm over", "All clear", {}, "high", 1_000_600, "alert-1", alert_id="alert-2"
    )
    assert orjson.loads(payloads.apns_body(follow_up))["alert_id"] == "alert-2"
    assert payloads.apns_request(follow_up).collapse_id == "alert-1"
    fcm = orjson.loads(orjson.dumps(payloads.fcm_message(follow_up, "tok", now=1_000_000)))
    assert fcm["message"]["android"]["collapse_key"] == "alert-1"
    assert fcm["message"]["data"]["alert_id"] == "alert-2"
    assert webpush.payload(follow_up)["alert_id"] == "alert-2"
