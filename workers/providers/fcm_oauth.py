"""OAuth2 access tokens for FCM HTTP v1, fetched for a service account and refreshed early.

The assertion and the form are pushfan.provider_tokens' (the JWT-bearer grant, RFC 7523),
posted to the account's `token_uri`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from pushfan.provider_tokens import ServiceAccount
from pushfan.workers.providers.transport import Transport

REFRESH_MARGIN_S = 300  # refresh this long before expiry, so no push meets an expired token


# Posts a form to a URL; answers (status, body). The token endpoint is called about once an
# hour per app, so any client will do; which one is chosen by `form_poster`.
FormPoster = Callable[[str, dict[str, str]], Awaitable[tuple[int, bytes]]]


class TokenError(Exception):
    """The token endpoint refused the service account (never includes the key)."""


def httpx_form_poster(client: httpx.AsyncClient) -> FormPoster:
    async def post(url: str, form: dict[str, str]) -> tuple[int, bytes]:
        response = await client.post(url, data=form)
        return response.status_code, response.content

    return post


def form_poster(
    token_url: str, base_url: str, transport: Transport, verify: ssl.SSLContext | bool = True
) -> FormPoster:
    """The provider's own HTTP/2 connection when the token endpoint shares its origin (the
    simulators serve both), else a short-lived HTTP/1.1 httpx request (Google's token host
    is not FCM's)."""
    token, base = urlsplit(token_url), urlsplit(base_url)
    if (token.scheme, token.netloc) == (base.scheme, base.netloc):
        path = token.path + (f"?{token.query}" if token.query else "")

        async def post_same_origin(_url: str, form: dict[str, str]) -> tuple[int, bytes]:
            headers = [("content-type", "application/x-www-form-urlencoded")]
            answer = await transport.post(path, headers, urlencode(form).encode())
            return answer.status, answer.body

        return post_same_origin

    async def post_elsewhere(url: str, form: dict[str, str]) -> tuple[int, bytes]:
        async with httpx.AsyncClient(timeout=10, verify=verify) as client:
            return await httpx_form_poster(client)(url, form)

    return post_elsewhere


class AccessTokenSource:
    def __init__(
        self, service_account_json: str, post: FormPoster | None, token_url: str | None
    ) -> None:
        """`post` None: the caller sets it with `use(...)` once it knows `self.token_url`."""
        self._account = ServiceAccount.parse(service_account_json)
        self.token_url: str = token_url or self._account.token_uri
        self._post = post
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token and time.time() < self._expires_at - REFRESH_MARGIN_S:
            return self._token
        async with self._lock:
            if self._token and time.time() < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            now = int(time.time())
            if self._post is None:
                raise TokenError("no client configured for the token endpoint")
            form = self._account.token_form(self.token_url, now)
            status, content = await self._post(self.token_url, form)
            if status != 200:
                raise TokenError(f"token endpoint answered {status}")
            body = orjson.loads(content)
            self._token = body["access_token"]
            self._expires_at = now + float(body.get("expires_in", 3600))
            return self._token

    def use(self, post: FormPoster) -> None:
        self._post = post

    def invalidate(self) -> None:
        self._token = None
