"""Reading and classifying provider answers (pushfan.workers.providers.errors)."""

from __future__ import annotations

import orjson
import pytest

from pushfan.outcomes import Outcome
from pushfan.workers.providers.errors import (
    apns_reason,
    classify_apns,
    classify_fcm,
    fcm_error_code,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (200, None, Outcome.DELIVERED),
        (410, "Unregistered", Outcome.INVALID),
        (400, "BadDeviceToken", Outcome.INVALID),
        (400, "BadTopic", Outcome.FAILED),
        (403, "InvalidProviderToken", Outcome.FAILED),
        (403, "ExpiredProviderToken", Outcome.RETRIED),
        (429, "TooManyProviderTokenUpdates", Outcome.RETRIED),
        (429, "TooManyRequests", Outcome.RETRIED),
        (500, "InternalServerError", Outcome.RETRIED),
        (503, "ServiceUnavailable", Outcome.RETRIED),
        (410, "SomethingElse", Outcome.FAILED),
        (413, "PayloadTooLarge", Outcome.FAILED),
    ],
)
def test_classify_apns(status: int, reason: str | None, outcome: Outcome) -> None:
    assert classify_apns(status, reason) is outcome


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (200, None, Outcome.DELIVERED),
        (404, "UNREGISTERED", Outcome.INVALID),
        (404, "NOT_FOUND", Outcome.FAILED),
        (400, "INVALID_ARGUMENT", Outcome.FAILED),
        (403, "SENDER_ID_MISMATCH", Outcome.FAILED),
        (401, "UNAUTHENTICATED", Outcome.RETRIED),
        (429, "QUOTA_EXCEEDED", Outcome.RETRIED),
        (500, "INTERNAL", Outcome.RETRIED),
        (502, None, Outcome.RETRIED),
        (503, "UNAVAILABLE", Outcome.RETRIED),
        (504, None, Outcome.RETRIED),
    ],
)
def test_classify_fcm(status: int, code: str | None, outcome: Outcome) -> None:
    assert classify_fcm(status, code) is outcome


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("30", 30.0), ("0", 0.0), ("1.5", 1.5), ("-1", None)],
)
def test_parse_retry_after_takes_delta_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_ignores_what_it_cannot_read() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_apns_reason_reads_apples_error_body() -> None:
    assert apns_reason(b'{"reason": "BadDeviceToken"}') == "BadDeviceToken"
    assert apns_reason(b'{"reason": "Unregistered", "timestamp": 1}') == "Unregistered"
    assert apns_reason(b"") is None
    assert apns_reason(b"[1, 2]") is None
    assert apns_reason(b'{"other": 1}') is None


def test_fcm_error_code_prefers_the_fcm_detail_over_the_rpc_status() -> None:
    detail = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError"}
    body = {
        "error": {
            "code": 404,
            "status": "NOT_FOUND",
            "details": [{"@type": "other"}, {**detail, "errorCode": "UNREGISTERED"}],
        }
    }
    assert fcm_error_code(orjson.dumps(body)) == "UNREGISTERED"
    assert fcm_error_code(orjson.dumps({"error": {"status": "UNAVAILABLE"}})) == "UNAVAILABLE"
    assert fcm_error_code(b"not json") is None
    assert fcm_error_code(b'{"no_error": 1}') is None
