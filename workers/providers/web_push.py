"""Web Push (RFC 8030) over the fast HTTP/2 transports, one pool of connections per push
service origin, VAPID-signed (RFC 8292) and encrypted per subscription (RFC 8291).

Per batch: the plaintext (pushfan.webpush.render) and the headers of each origin (TTL,
Urgency from the priority, Topic from the alert id, the VAPID Authorization cached per
origin) are built once; per push the payload is encrypted for that subscription's keys,
every body of the slice before the first request goes out. Encrypting between requests
holds the GIL while the transport's thread has answers to hand back, and the two threads
then trade the GIL once per push, which costs more CPU than the encryption saves in
latency (loadtest/bench_webpush_wire.py measures both providers on the wire).
A subscription past its expirationTime (carried in the wire token) is filed INVALID without
a request, like a 404/410. Answers are classified with errors.classify_web: 201 delivered,
404/410 a dead subscription, 429/5xx retried, 413 and the rest failed with a reason naming
what was wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pushfan import payloads, webpush
from pushfan.messages import Notification
from pushfan.outcomes import Outcome
from pushfan.provider import Provider
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.providers.errors import classify_web, parse_retry_after
from pushfan.workers.providers.fanout import lanes_per_batch, send_all
from pushfan.workers.providers.transport import Answer, Transport, TransportConfig
from pushfan.workers.providers.vapid import VapidSigner
from pushfan.workers.providers.webpush_crypto import encrypt


class OriginTransports:
    """A Transport whose `path` is an absolute endpoint URL: one HTTP/2 transport per push
    service origin, opened on first use and shared by every app, so the pushes of all
    batches to one origin multiplex on the same few connections."""

    def __init__(self, settings: Settings, build: Callable[[TransportConfig], Transport]) -> None:
        self._settings = settings
        self._build = build
        self._by_origin: dict[str, Transport] = {}

    def for_origin(self, origin: str) -> Transport:
        transport = self._by_origin.get(origin)
        if transport is None:
            s = self._settings
            transport = self._build(
                TransportConfig(
                    base_url=origin,
                    ca_file=s.ca_file,
                    max_connections=s.http_max_connections,
                    max_streams=s.http_max_streams,
                    timeout_s=s.push_timeout_s,
                )
            )
            self._by_origin[origin] = transport
        return transport

    async def post(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        extra: tuple[str, str] | None = None,
    ) -> Answer:
        origin = webpush.origin_of(path)
        transport = self.for_origin(origin)
        return await transport.post(path[len(origin) :] or "/", headers, body, extra)

    async def close(self) -> None:
        for transport in self._by_origin.values():
            await transport.close()
        self._by_origin.clear()


Request = tuple[str, list[tuple[str, str]], bytes]  # endpoint URL, headers, encrypted body
EXPIRED = "subscription expired (its expirationTime has passed)"


def urgency(n: Notification) -> str:
    return "high" if n.priority == "high" else "normal"


class WebPushProvider:
    name = Provider.WEB

    def __init__(
        self,
        settings: Settings,
        app: AppConfig,
        transports: Transport,  # OriginTransports: `path` is the absolute endpoint URL
        concurrency: asyncio.Semaphore,
    ) -> None:
        assert app.vapid_subject, f"app {app.name} has no VAPID subject"
        self._transports = transports
        self._concurrency = concurrency
        self._vapid = VapidSigner(app.vapid_key_text(), app.vapid_subject)
        self._lanes = lanes_per_batch(settings.sender_concurrency, settings.sender_prefetch)

    def _headers(self, n: Notification, origin: str) -> list[tuple[str, str]]:
        headers = [
            ("authorization", self._vapid.header(origin)),
            ("ttl", str(payloads.ttl_seconds(n))),
            ("urgency", urgency(n)),
            ("content-encoding", "aes128gcm"),
            ("content-type", "application/octet-stream"),
        ]
        topic = webpush.topic(n.collapse_id)
        if topic:
            headers.append(("topic", topic))
        return headers

    def _prepare(
        self,
        notification: Notification,
        plaintext: bytes,
        device_ids: list[int],
        tokens: list[str],
        result: SendResult,
    ) -> tuple[list[int], list[Request]]:
        """The device ids to send to and each one's request (endpoint, headers, encrypted
        body); a subscription past its expirationTime goes to `result` as INVALID instead."""
        now = time.time()
        headers: dict[str, list[tuple[str, str]]] = {}
        ids: list[int] = []
        requests: list[Request] = []
        for device_id, token in zip(device_ids, tokens, strict=True):
            endpoint, p256dh, auth, expires_at = webpush.split_wire_token(token)
            if expires_at and expires_at <= now:
                result.refused(device_id, Outcome.INVALID, 0, EXPIRED)
                continue
            origin = webpush.origin_of(endpoint)
            common = headers.get(origin)
            if common is None:
                common = headers[origin] = self._headers(notification, origin)
            ids.append(device_id)
            requests.append((endpoint, common, encrypt(plaintext, p256dh, auth)))
        return ids, requests

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        result = SendResult()
        plaintext = webpush.render(notification)
        if len(plaintext) > webpush.MAX_PLAINTEXT_BYTES:
            reason = (
                f"payload is {len(plaintext)} bytes; web push takes {webpush.MAX_PLAINTEXT_BYTES}"
            )
            for device_id in device_ids:
                result.refused(device_id, Outcome.FAILED, 413, reason)
            return result
        ids, requests = self._prepare(notification, plaintext, device_ids, tokens, result)
        post = self._transports.post

        def request(i: int) -> Awaitable[Answer]:
            return post(*requests[i])

        body_bytes = len(plaintext) + webpush.BODY_OVERHEAD_BYTES

        def answered(result: SendResult, device_id: int, answer: Answer) -> None:
            """Every answer but a 200 (a push service answers 201 Created when it took it)."""
            outcome = classify_web(answer.status)
            if outcome is Outcome.DELIVERED:
                result.delivered.append(device_id)
                return
            if answer.status in (401, 403):
                self._vapid.clear()  # a fresh token for the retry, or the next batch
            wait = parse_retry_after(answer.headers.get("retry-after"))
            reason = reason_of(answer.status, body_bytes)
            result.refused(device_id, outcome, answer.status, reason, wait)

        return await send_all(
            Provider.WEB,
            ids,
            self._lanes,
            self._concurrency,
            stop,
            request,
            answered,
            result,
        )

    async def close(self) -> None:
        return None  # the transports are shared and closed by build.Providers


def reason_of(status: int, body_bytes: int) -> str:
    """A short reason for the logs and SendResult.reasons (no endpoint, no answer body)."""
    if status == 413:
        return f"413 payload too large: the encrypted body was {body_bytes} bytes"
    if 300 <= status < 400:
        return f"{status} redirect, not followed"
    return str(status)
