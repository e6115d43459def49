"""How provider answers are classified, onto pushfan.outcomes.Outcome.

    answer
    ├── DELIVERED          2xx: the provider accepted the push
    ├── INVALID            the token is dead: deactivate the device, never retry
    │                      APNs 410 Unregistered, 400 BadDeviceToken; FCM 404 UNREGISTERED;
    │                      Web Push 404 / 410 (the subscription expired or was removed)
    ├── RETRIED            retry later (with the provider's Retry-After when it gives one)
    │   ├── quota          APNs 429 TooManyRequests; FCM 429 QUOTA_EXCEEDED
    │   └── unavailable    5xx, timeouts, dropped connections, expired auth tokens (401/403
    │                      Expired*), which are refreshed before the retry
    └── FAILED             anything else (bad payload, wrong topic, sender mismatch, a Web
                           Push 413 payload too large or 403 VAPID key mismatch, a 3xx):
                           retrying cannot help

The provider modules read the provider's reason from an error body (`apns_reason`,
`fcm_error_code`) and map their wire answers onto `Outcome` with `classify_*`; the sender
acts on outcomes only.
"""

from __future__ import annotations

import orjson

from pushfan.outcomes import Outcome

APNS_TOKEN_ERRORS = frozenset({(410, "Unregistered"), (400, "BadDeviceToken")})
APNS_TRANSIENT_STATUS = frozenset({429, 500, 503})
APNS_TRANSIENT_REASONS = frozenset({"ExpiredProviderToken", "TooManyProviderTokenUpdates"})

FCM_TOKEN_ERRORS = frozenset({(404, "UNREGISTERED")})
FCM_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


# Answers that say the provider refused our credentials (a revoked APNs key or certificate,
# an FCM service account without access), whatever outcome they are filed under: the pause
# rule (pushfan.pausing) counts them. The reasons are SendResult.reasons' keys.
AUTH_REFUSALS = frozenset(
    {
        "InvalidProviderToken",  # APNs 403: the key is revoked or unknown
        "MissingProviderToken",
        "BadCertificate",
        "BadCertificateEnvironment",
        "UNAUTHENTICATED",  # FCM 401 (filed RETRIED: an expired access token looks the same)
        "THIRD_PARTY_AUTH_ERROR",  # FCM 401: the APNs credentials uploaded to Firebase
        "PERMISSION_DENIED",  # FCM 403: the service account may not send for the project
    }
)


# Those of them filed RETRIED (FCM 401): not in the result's `failed`.
RETRIED_AUTH_REFUSALS = frozenset({"UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"})


def auth_refusals(reasons: dict[str, int]) -> int:
    """How many of a result's answers were refusals of our credentials."""
    return sum(n for reason, n in reasons.items() if reason in AUTH_REFUSALS)


def bad_answers(invalid: int, failed: int, reasons: dict[str, int]) -> int:
    """Answers a canary counts against the alert: invalid, failed, or refused for
    authentication (a refusal filed RETRIED included)."""
    retried = sum(n for reason, n in reasons.items() if reason in RETRIED_AUTH_REFUSALS)
    return invalid + failed + retried


def classify_apns(status: int, reason: str | None) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if (status, reason) in APNS_TOKEN_ERRORS:
        return Outcome.INVALID
    if status in APNS_TRANSIENT_STATUS or reason in APNS_TRANSIENT_REASONS:
        return Outcome.RETRIED
    return Outcome.FAILED


def classify_fcm(status: int, error_code: str | None) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if (status, error_code) in FCM_TOKEN_ERRORS:
        return Outcome.INVALID
    if status in FCM_TRANSIENT_STATUS or status == 401:
        return Outcome.RETRIED  # 401: the access token expired; refreshed before retrying
    return Outcome.FAILED


WEB_TOKEN_STATUS = frozenset({404, 410})
WEB_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


def classify_web(status: int) -> Outcome:
    if 200 <= status < 300:  # RFC 8030: 201 Created
        return Outcome.DELIVERED
    if status in WEB_TOKEN_STATUS:
        return Outcome.INVALID
    if status in WEB_TRANSIENT_STATUS or status == 401:
        return Outcome.RETRIED  # 401: the VAPID token expired; signed again before retrying
    return Outcome.FAILED


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given as delta-seconds (what APNs and FCM send)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def apns_reason(body: bytes) -> str | None:
    """Apple's `reason` from an error body (`{"reason": "BadDeviceToken"}`), else None."""
    try:
        reason = orjson.loads(body).get("reason")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(reason) if reason else None


def fcm_error_code(body: bytes) -> str | None:
    """FCM's ErrorCode from an error body, else the google.rpc status, else None."""
    try:
        error = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    for detail in error.get("details", ()):
        if detail.get("@type", "").endswith("google.firebase.fcm.v1.FcmError"):
            code = detail.get("errorCode")
            if code:
                return str(code)
    status = error.get("status")
    return str(status) if status else None
