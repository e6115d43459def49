"""Unit tests for FCM request validation."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.simulators.fcm_message import payload_too_big, request_refusal

TOKEN = "cZ1ohKJ3TxA:APA91b" + "A" * 146


def test_a_pushfan_message_is_valid() -> None:
    message = {
        "token": TOKEN,
        "notification": {"title": "t", "body": "b"},
        "android": {"collapse_key": "alert-1", "priority": "high"},
        "apns": {"headers": {"apns-collapse-id": "alert-1"}},
        "webpush": {},
        "data": {"alert_id": "alert-1"},
    }
    assert request_refusal({"message": message, "validate_only": True}) is None
    assert request_refusal({"message": {"topic": "news"}}) is None
    assert request_refusal({"message": {"condition": "'a' in topics"}}) is None


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"message": "hi"},
        {"message": {}},
        {"message": {"token": TOKEN, "topic": "news"}},
        {"message": {"token": "short"}},
        {"message": {"token": "bad token with spaces" * 3}},
        {"message": {"token": TOKEN, "data": {"n": 1}}},
        {"message": {"token": TOKEN, "data": {"from": "x"}}},
        {"message": {"token": TOKEN, "notification": "hi"}},
        {"message": {"token": TOKEN, "surprise": {}}},
        {"message": {"token": TOKEN}, "validate_only": "yes"},
        {"message": {"token": TOKEN}, "extra": 1},
    ],
)
def test_invalid_requests_are_refused(request_body: Any) -> None:
    assert request_refusal(request_body) is not None


def test_payload_size_excludes_the_target() -> None:
    message = {"token": "x" * 4000, "data": {"k": "v"}}
    assert not payload_too_big(message, 4100)
    assert payload_too_big({"token": TOKEN, "data": {"k": "v" * 4100}}, 4200)
