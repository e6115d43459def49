"""FCM HTTP v1 through httpx over HTTP/2, with the service account's OAuth2 token."""

from __future__ import annotations

import asyncio
import time

import httpx

from pushfan import metrics, payloads
from pushfan.messages import Notification
from pushfan.outcomes import Outcome
from pushfan.provider import Provider
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.providers.errors import classify_fcm, fcm_error_code, parse_retry_after
from pushfan.workers.providers.fcm_oauth import AccessTokenSource, httpx_form_poster


class HttpxFcmProvider:
    name = Provider.FCM

    def __init__(
        self,
        settings: Settings,
        app: AppConfig,
        client: httpx.AsyncClient,
        concurrency: asyncio.Semaphore,
    ) -> None:
        self._client = client
        self._concurrency = concurrency
        self._url = (
            f"{settings.fcm_base_url.rstrip('/')}/v1/projects/{app.fcm_project_id}/messages:send"
        )
        self._tokens = AccessTokenSource(
            app.fcm_service_account_json(), httpx_form_poster(client), settings.fcm_token_url
        )
        self._timeout = settings.push_timeout_s

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        before, after = payloads.fcm_body_parts(notification)
        result = SendResult()
        try:
            access = await self._tokens.token()
        except Exception as exc:
            result.retried.extend(device_ids)
            result.note(f"oauth:{type(exc).__name__}")
            return result
        headers = {"authorization": f"Bearer {access}", "content-type": "application/json"}
        in_flight = metrics.IN_FLIGHT.labels(Provider.FCM)
        latency = metrics.PROVIDER_LATENCY.labels(Provider.FCM)

        async def one(device_id: int, token: str) -> None:
            async with self._concurrency:
                if stop():
                    result.stopped.append(device_id)
                    return
                in_flight.inc()
                started = time.perf_counter()
                try:
                    response = await self._client.post(
                        self._url,
                        content=before + token.encode() + after,
                        headers=headers,
                        timeout=self._timeout,
                    )
                except Exception as exc:  # timeouts, dropped connections: retry later
                    result.retried.append(device_id)
                    result.note(type(exc).__name__)
                    return
                finally:
                    in_flight.dec()
                    latency.observe(time.perf_counter() - started)
            status = response.status_code
            code = None if status == 200 else fcm_error_code(response.content)
            outcome = classify_fcm(status, code)
            if outcome is Outcome.DELIVERED:
                result.delivered.append(device_id)
                return
            if status == 401:
                self._tokens.invalidate()  # expired access token: a fresh one for the retry
            wait = parse_retry_after(response.headers.get("retry-after"))
            result.refused(device_id, outcome, status, code, wait)

        await asyncio.gather(*(one(d, t) for d, t in zip(device_ids, tokens, strict=True)))
        return result

    async def close(self) -> None:
        return None  # the shared client is closed by build.ProviderClients
