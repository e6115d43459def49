"""APNs through aioapns (token auth, HTTP/2 over TLS), pointed at any base URL.

aioapns keeps Apple's host and port as class attributes of its protocol class, so a
subclass carrying the configured host and port is installed on the pool: the same code
talks to Apple or to the simulator.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from urllib.parse import urlsplit

import orjson
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsProductionClientProtocol

from pushfan import metrics, payloads
from pushfan.messages import Notification
from pushfan.outcomes import Outcome
from pushfan.provider import Provider
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.providers.errors import classify_apns
from pushfan.workers.providers.tls import client_context

log = logging.getLogger(__name__)

# Stable per (alert, device): a retried push carries the same apns-id.
_APNS_ID_NAMESPACE = uuid.UUID("0f5d6a52-6f0e-4a53-9d1e-2a4a1f0c9b11")


def _protocol_for(base_url: str) -> type[APNsProductionClientProtocol]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "api.push.apple.com", parts.port or 443
    return type(
        "ConfiguredAPNsProtocol",
        (APNsProductionClientProtocol,),
        {"APNS_SERVER": host, "APNS_PORT": port},
    )


class AioapnsProvider:
    name = Provider.APNS

    def __init__(
        self,
        settings: Settings,
        app: AppConfig,
        concurrency: asyncio.Semaphore,
        base_url: str | None = None,
    ) -> None:
        self._timeout = settings.push_timeout_s
        self._concurrency = concurrency
        self._client = APNs(
            key=app.apns_key_pem(),
            key_id=app.apns_key_id,
            team_id=app.apns_team_id,
            topic=app.apns_topic,
            max_connections=settings.apns_max_connections,
            # Retries belong to the broker: one attempt here, failures come back as data.
            max_connection_attempts=1,
            ssl_context=client_context(settings.ca_file),
        )
        self._client.pool.protocol_class = _protocol_for(base_url or settings.apns_base_url)

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        rendered = payloads.apns_request(notification)
        message = orjson.loads(rendered.body)
        ttl = payloads.ttl_seconds(notification)
        priority = int(rendered.priority)
        push_type = PushType(rendered.push_type)
        collapse = rendered.collapse_id or None
        apns_ids = notification.collapse_id or None
        result = SendResult()
        in_flight = metrics.IN_FLIGHT.labels(Provider.APNS)
        latency = metrics.PROVIDER_LATENCY.labels(Provider.APNS)

        async def one(device_id: int, token: str) -> None:
            request = NotificationRequest(
                device_token=token,
                message=message,
                notification_id=str(uuid.uuid5(_APNS_ID_NAMESPACE, f"{apns_ids}:{device_id}")),
                time_to_live=ttl,
                priority=priority,
                collapse_key=collapse,
                push_type=push_type,
            )
            async with self._concurrency:
                if stop():
                    result.stopped.append(device_id)
                    return
                in_flight.inc()
                started = time.perf_counter()
                try:
                    answer = await asyncio.wait_for(
                        self._client.send_notification(request), self._timeout
                    )
                except Exception as exc:  # timeouts, dropped connections: retry later
                    result.retried.append(device_id)
                    result.note(type(exc).__name__)
                    return
                finally:
                    in_flight.dec()
                    latency.observe(time.perf_counter() - started)
            status = int(answer.status or 0)
            outcome = classify_apns(status, answer.description)
            if outcome is Outcome.DELIVERED:
                result.delivered.append(device_id)
            else:
                result.refused(device_id, outcome, status, answer.description)

        await asyncio.gather(*(one(d, t) for d, t in zip(device_ids, tokens, strict=True)))
        return result

    async def close(self) -> None:
        self._client.pool.close()
