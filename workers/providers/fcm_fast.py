"""FCM HTTP v1 over the fast HTTP/2 transport, with the service account's OAuth2 token.

Per batch: the body halves (payloads.fcm_body_parts: android.collapse_key and ttl included)
and the headers are built once; per push only the token is spliced into the body. The OAuth
token comes from fcm_oauth.AccessTokenSource, whose rare calls reuse this
transport when the token endpoint shares its origin.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable

from pushfan import payloads
from pushfan.messages import Notification
from pushfan.provider import Provider
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.base import SendResult, StopCheck, never
from pushfan.workers.providers.errors import classify_fcm, fcm_error_code, parse_retry_after
from pushfan.workers.providers.fanout import lanes_per_batch, send_all
from pushfan.workers.providers.fcm_oauth import AccessTokenSource, form_poster
from pushfan.workers.providers.transport import Answer, Transport


class FastFcmProvider:
    name = Provider.FCM

    def __init__(
        self,
        settings: Settings,
        app: AppConfig,
        transport: Transport,
        concurrency: asyncio.Semaphore,
    ) -> None:
        self._transport = transport
        self._concurrency = concurrency
        self._path = f"/v1/projects/{app.fcm_project_id}/messages:send"
        self._tokens = AccessTokenSource(
            app.fcm_service_account_json(), None, settings.fcm_token_url
        )
        ca = settings.ca_file
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
        self._tokens.use(
            form_poster(self._tokens.token_url, settings.fcm_base_url, transport, verify)
        )
        self._lanes = lanes_per_batch(settings.sender_concurrency, settings.sender_prefetch)

    async def send(
        self,
        notification: Notification,
        device_ids: list[int],
        tokens: list[str],
        stop: StopCheck = never,
    ) -> SendResult:
        result = SendResult()
        try:
            access = await self._tokens.token()
        except Exception as exc:  # the token endpoint is down or refused: retry the batch
            result.retried.extend(device_ids)
            result.note(f"oauth:{type(exc).__name__}")
            return result
        before, after = payloads.fcm_body_parts(notification)
        headers = [("authorization", f"Bearer {access}"), ("content-type", "application/json")]
        post, path = self._transport.post, self._path

        def request(i: int) -> Awaitable[Answer]:
            return post(path, headers, before + tokens[i].encode() + after)

        return await send_all(
            Provider.FCM,
            device_ids,
            self._lanes,
            self._concurrency,
            stop,
            request,
            self._refused,
            result,
        )

    def _refused(self, result: SendResult, device_id: int, answer: Answer) -> None:
        code = fcm_error_code(answer.body)
        if answer.status == 401:
            self._tokens.invalidate()  # expired access token: a fresh one for the retry
        wait = parse_retry_after(answer.headers.get("retry-after"))
        result.refused(device_id, classify_fcm(answer.status, code), answer.status, code, wait)

    async def close(self) -> None:
        return None  # the transport and token client are shared, closed by build.ProviderClients
