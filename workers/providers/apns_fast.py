"""APNs over the fast HTTP/2 transport (workers/providers/transport.py), token auth.

Per batch: the body (pushfan.payloads renders it once), the JWT and every header but
`apns-id` are built once; per push only the path (the token) and the stable apns-id differ.
Answers are classified with errors.classify_apns from Apple's `{"reason": ...}` bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable

from pushfan import payloads
from pushfan.messages import Notification
from pushfan.provider import Provider
from pushfan.provider_tokens import apns_provider_token
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.providers.errors import apns_reason, classify_apns, parse_retry_after
from pushfan.workers.providers.fanout import lanes_per_batch, send_all, stable_uuid_hex
from pushfan.workers.providers.transport import Answer, Transport

log = logging.getLogger(__name__)

# The same namespace as apns_aioapns: a push keeps its apns-id whichever client sends it.
APNS_ID_NAMESPACE = uuid.UUID("0f5d6a52-6f0e-4a53-9d1e-2a4a1f0c9b11")
# Apple refuses tokens older than an hour and answers TooManyProviderTokenUpdates to more
# than one new token per 20 minutes: sign once, reuse for 40 minutes.
TOKEN_LIFETIME_S = 40 * 60


class ProviderToken:
    """The ES256 provider token (JWT) for one key, signed once and reused."""

    def __init__(self, key_pem: str, key_id: str, team_id: str) -> None:
        self._key, self._key_id, self._team_id = key_pem, key_id, team_id
        self._value = ""
        self._renew_at = 0.0

    def header(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            token = apns_provider_token(self._key, self._key_id, self._team_id, now)
            self._value = f"bearer {token}"
            self._renew_at = now + TOKEN_LIFETIME_S
        return self._value

    def expire(self) -> None:
        """Apple said ExpiredProviderToken: sign a new one for the retry."""
        self._renew_at = 0.0


def apns_id_prefix(collapse_id: str) -> hashlib._Hash:
    """SHA-1 state after namespace + "<alert>:"; finishing it with the device id gives the
    same value as uuid5(APNS_ID_NAMESPACE, f"{alert}:{device}")."""
    return hashlib.sha1(APNS_ID_NAMESPACE.bytes + f"{collapse_id}:".encode())


class FastApnsProvider:
    name = Provider.APNS

    def __init__(
        self,
        settings: Settings,
        app: AppConfig,
        transport: Transport,
        concurrency: asyncio.Semaphore,
    ) -> None:
        """Token auth signs a JWT per `TOKEN_LIFETIME_S`; certificate auth (the transport
        presents the app's certificate) sends no authorization header."""
        assert app.apns_topic
        self._transport = transport
        self._concurrency = concurrency
        self._topic = app.apns_topic
        self._token: ProviderToken | None = None
        if not app.uses_apns_certificate:
            assert app.apns_key_id and app.apns_team_id
            self._token = ProviderToken(app.apns_key_pem(), app.apns_key_id, app.apns_team_id)
        self._lanes = lanes_per_batch(settings.sender_concurrency, settings.sender_prefetch)

    def _headers(self, r: payloads.ApnsRequest) -> list[tuple[str, str]]:
        auth = [] if self._token is None else [("authorization", self._token.header())]
        headers = [
            *auth,
            ("apns-topic", self._topic),
            ("apns-push-type", r.push_type),
            ("apns-priority", r.priority),
            # 0 = deliver now or never; else Apple stores it until the alert's deadline.
            ("apns-expiration", r.expiration),
            ("content-type", "application/json"),
        ]
        if r.collapse_id:
            headers.append(("apns-collapse-id", r.collapse_id))
        return headers

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        rendered = payloads.apns_request(notification)
        body = rendered.body
        headers = self._headers(rendered)
        prefix = apns_id_prefix(notification.collapse_id)
        result = SendResult()
        post = self._transport.post

        def request(i: int) -> Awaitable[Answer]:
            digest = prefix.copy()
            digest.update(str(device_ids[i]).encode())
            apns_id = ("apns-id", stable_uuid_hex(digest.digest()))
            return post("/3/device/" + tokens[i], headers, body, apns_id)

        return await send_all(
            Provider.APNS,
            device_ids,
            self._lanes,
            self._concurrency,
            stop,
            request,
            self._refused,
            result,
        )

    def _refused(self, result: SendResult, device_id: int, answer: Answer) -> None:
        reason = apns_reason(answer.body)
        if reason == "ExpiredProviderToken" and self._token is not None:
            self._token.expire()  # signed again for the retry
        wait = parse_retry_after(answer.headers.get("retry-after"))
        result.refused(device_id, classify_apns(answer.status, reason), answer.status, reason, wait)

    async def close(self) -> None:
        return None  # the transport is shared and closed by build.ProviderClients
