"""The web provider (workers/providers/web_push.py): RFC 8291 encryption, RFC 8292 VAPID,
RFC 8030 headers, and how each answer of a push service is filed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import http_ece
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushfan import webpush
from pushfan.messages import Notification
from pushfan.settings import AppConfig, Settings
from pushfan.webpush import b64url, b64url_decode
from pushfan.workers.providers.transport import Answer
from pushfan.workers.providers.vapid import VapidSigner, load_key
from pushfan.workers.providers.web_push import WebPushProvider
from pushfan.workers.providers.webpush_crypto import encrypt
from tests.webpush.keys import (
    RFC_AS_PRIVATE,
    RFC_AUTH,
    RFC_MESSAGE,
    RFC_PLAINTEXT,
    RFC_SALT,
    RFC_UA_PUBLIC,
    Browser,
)

VAPID_KEY = b64url(
    ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
)
ALERT_ID = "5b0c9d3e-8f1a-4c2b-9d7e-6a5f4e3d2c1b"


def test_encryption_matches_the_rfc_8291_example_byte_for_byte() -> None:
    server = load_key(RFC_AS_PRIVATE)
    body = encrypt(
        RFC_PLAINTEXT,
        b64url_decode(RFC_UA_PUBLIC),
        b64url_decode(RFC_AUTH),
        salt=b64url_decode(RFC_SALT),
        server_key=server,
    )
    assert b64url(body) == RFC_MESSAGE


def test_http_ece_decrypts_what_we_encrypt_with_fresh_keys_each_time() -> None:
    browser = Browser.new()
    bodies = [encrypt(b"hello", b64url_decode(browser.p256dh), browser.auth) for _ in range(2)]
    assert bodies[0][:16] != bodies[1][:16] and bodies[0][21:86] != bodies[1][21:86]
    for body in bodies:
        plain = http_ece.decrypt(body, private_key=browser.private, auth_secret=browser.auth)
        assert plain == b"hello"


def test_the_vapid_token_is_cached_per_origin_and_renewed_early() -> None:
    signer = VapidSigner(VAPID_KEY, "mailto:ops@example.com")
    now = 1_800_000_000.0
    a = signer.header("https://fcm.googleapis.com", now)
    assert signer.header("https://fcm.googleapis.com", now + 3600) == a
    assert signer.header("https://web.push.apple.com", now) != a
    token = a.split("t=", 1)[1].split(",", 1)[0]
    claims = jwt.decode(
        token,
        load_key(VAPID_KEY).public_key(),
        algorithms=["ES256"],
        audience="https://fcm.googleapis.com",
        options={"verify_exp": False},
    )
    assert claims["sub"] == "mailto:ops@example.com" and claims["exp"] <= now + 24 * 3600
    assert a.endswith(f", k={signer.public_key}")
    later = now + 10 * 3600  # within the last quarter of a 12 h token
    assert signer.header("https://fcm.googleapis.com", later) != a


@dataclass
class FakeServices:
    """Push services that record each request and answer by the endpoint's last segment."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def post(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        extra: tuple[str, str] | None = None,
    ) -> Answer:
        self.requests.append((path, dict(headers), body))
        status = int(path.rsplit("/", 1)[1].split("-")[0])
        answer_headers = {"retry-after": "7"} if status == 429 else {}
        return Answer(status, answer_headers, b"")

    async def close(self) -> None:
        return None


def provider(services: FakeServices) -> WebPushProvider:
    app = AppConfig(name="alpha", vapid_private_key=VAPID_KEY, vapid_subject="mailto:o@x.io")
    settings = Settings(apps=[app])
    return WebPushProvider(settings, app, services, asyncio.Semaphore(10))


NOTE = Notification(
    title="Storm",
    body="Stay inside",
    data={"k": "v"},
    priority="normal",
    expires_at=2_000_000_000,
    collapse_id=ALERT_ID,
)


async def test_each_answer_is_filed_and_every_body_decrypts_to_the_payload() -> None:
    services = FakeServices()
    browsers = [Browser.new() for _ in range(8)]
    statuses = ["201", "410", "404", "429", "503", "413", "301", "403"]
    origins = ["https://fcm.googleapis.com", "https://web.push.apple.com"]
    tokens = [
        webpush.wire_token(f"{origins[i % 2]}/push/{s}-{i}", f"{b.p256dh} {b.auth_b64}")
        for i, (b, s) in enumerate(zip(browsers, statuses, strict=True))
    ]
    sent_at = time.time()
    result = await provider(services).send(NOTE, list(range(1, 9)), tokens)
    assert result.delivered == [1] and sorted(result.invalid) == [2, 3]
    assert sorted(result.retried) == [4, 5] and result.retry_after == 7 and result.throttled == 1
    assert sorted(result.failed) == [6, 7, 8]
    expected_size = len(webpush.render(NOTE)) + webpush.BODY_OVERHEAD_BYTES
    assert f"413 payload too large: the encrypted body was {expected_size} bytes" in result.reasons
    assert "301 redirect, not followed" in result.reasons
    by_path = {path: (headers, body) for path, headers, body in services.requests}
    for i, browser in enumerate(browsers):
        headers, body = by_path[f"{origins[i % 2]}/push/{statuses[i]}-{i}"]
        assert headers["content-encoding"] == "aes128gcm" and headers["urgency"] == "normal"
        assert headers["topic"] == ALERT_ID.replace("-", "") and len(headers["topic"]) == 32
        assert NOTE.expires_at - sent_at - 5 <= int(headers["ttl"]) <= NOTE.expires_at - sent_at
        token = headers["authorization"].split("t=", 1)[1].split(",", 1)[0]
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == origins[i % 2]
        plain = http_ece.decrypt(body, private_key=browser.private, auth_secret=browser.auth)
        assert orjson.loads(plain) == {
            "title": "Storm",
            "body": "Stay inside",
            "data": {"k": "v"},
            "alert_id": ALERT_ID,
        }
        assert len(body) == expected_size


async def test_a_payload_too_large_for_web_push_fails_without_a_request() -> None:
    services = FakeServices()
    big = Notification(title="t", body="x" * (webpush.MAX_PLAINTEXT_BYTES + 1))
    browser = Browser.new()
    token = webpush.wire_token(
        "https://fcm.googleapis.com/push/201-0", f"{browser.p256dh} {browser.auth_b64}"
    )
    result = await provider(services).send(big, [1], [token])
    assert result.failed == [1] and not services.requests
    assert any("web push takes 3993" in reason for reason in result.reasons)


async def test_a_subscription_past_its_expiration_time_is_invalid_and_not_sent() -> None:
    """The browser's expirationTime travels in the wire token: once past, the push is filed
    INVALID (the sender deactivates the device) without a request; a later one is sent."""
    services = FakeServices()
    browsers = [Browser.new() for _ in range(3)]
    now = int(time.time())
    expiries = [now - 1, now + 3600, 0]
    tokens = [
        webpush.wire_token(
            f"https://fcm.googleapis.com/push/201-{i}", f"{b.p256dh} {b.auth_b64}", e
        )
        for i, (b, e) in enumerate(zip(browsers, expiries, strict=True))
    ]
    result = await provider(services).send(NOTE, [1, 2, 3], tokens)
    assert result.invalid == [1] and sorted(result.delivered) == [2, 3]
    assert sorted(path.rsplit("/", 1)[1] for path, _, _ in services.requests) == ["201-1", "201-2"]
    assert result.reasons == {"subscription expired (its expirationTime has passed)": 1}


@pytest.mark.parametrize(
    ("collapse", "topic"),
    [(ALERT_ID, ALERT_ID.replace("-", "")), ("", None), ("x" * 33, None), ("a b", None)],
)
def test_topic_is_at_most_32_url_safe_characters(collapse: str, topic: str | None) -> None:
    assert webpush.topic(collapse) == topic
