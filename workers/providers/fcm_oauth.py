"""OAuth2 access tokens for FCM HTTP v1, minted from a service account and refreshed early.

The JWT-bearer grant (RFC 7523) Google documents for service accounts: an RS256-signed
assertion with the account's key, posted to the account's `token_uri`.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import orjson

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_MARGIN_S = 300  # refresh this long before expiry, so no push meets an expired token


class TokenError(Exception):
    """The token endpoint refused the service account (never includes the key)."""


class AccessTokenSource:
    def __init__(self, service_account_json: str, client: httpx.AsyncClient, token_url: str | None):
        account = orjson.loads(service_account_json)
        self._email: str = account["client_email"]
        self._key: str = account["private_key"]
        self._key_id: str | None = account.get("private_key_id")
        self._token_url: str = token_url or account["token_uri"]
        self._client = client
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _assertion(self, now: int) -> str:
        headers = {"kid": self._key_id} if self._key_id else None
        claims = {
            "iss": self._email,
            "scope": SCOPE,
            "aud": self._token_url,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def token(self) -> str:
        if self._token and time.time() < self._expires_at - REFRESH_MARGIN_S:
            return self._token
        async with self._lock:
            if self._token and time.time() < self._expires_at - REFRESH_MARGIN_S:
                return self._token
            now = int(time.time())
            response = await self._client.post(
                self._token_url,
                data={"grant_type": GRANT_TYPE, "assertion": self._assertion(now)},
            )
            if response.status_code != 200:
                raise TokenError(f"token endpoint answered {response.status_code}")
            body = response.json()
            self._token = body["access_token"]
            self._expires_at = now + float(body.get("expires_in", 3600))
            return self._token

    def invalidate(self) -> None:
        self._token = None
