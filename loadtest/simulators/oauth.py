"""Google's OAuth2 token endpoint for service accounts (the JWT-bearer grant), in miniature.

A client signs an RS256 assertion with its service-account key and trades it at `POST /token`
for a short-lived opaque access token; `messages:send` then only looks the bearer token up in
memory, so the RSA verify costs once per token lifetime, not once per push.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
MAX_ASSERTION_LIFETIME_S = 3600
CLOCK_SKEW_S = 60
_MAX_LIVE_TOKENS = 100_000

_DECODE_OPTIONS: Any = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
}


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    public_key: RSAPublicKey

    @classmethod
    def parse(cls, spec: str) -> ServiceAccount:
        """`CLIENT_EMAIL=PUBLIC_PEM_PATH`, as given to `--account`."""
        email, path = spec.split("=", 1)
        public = load_pem_public_key(Path(path).read_bytes())
        if not isinstance(public, RSAPublicKey):
            raise ValueError(f"{path}: not an RSA public key")
        return cls(email, public)


class GrantError(Exception):
    """Refused grant, answered 400 with OAuth's `error`/`error_description`."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


class TokenIssuer:
    def __init__(
        self,
        accounts: list[ServiceAccount],
        ttl_s: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = {account.client_email: account for account in accounts}
        self._ttl = ttl_s
        self._clock = clock
        self._live: dict[str, float] = {}  # access token -> expiry (unix seconds)

    def grant(self, form: bytes, audiences: set[str]) -> dict[str, Any]:
        """Checks a token request body; returns the token response or raises GrantError."""
        fields = parse_qs(form.decode("utf-8", "replace"))
        if fields.get("grant_type", [""])[0] != GRANT_TYPE:
            raise GrantError("unsupported_grant_type", "Invalid grant_type.")
        assertion = fields.get("assertion", [""])[0]
        self._check_assertion(assertion, audiences)
        now = self._clock()
        if len(self._live) >= _MAX_LIVE_TOKENS:
            self._live = {tok: exp for tok, exp in self._live.items() if exp > now}
        access_token = "ya29.sim-" + secrets.token_urlsafe(32)
        self._live[access_token] = now + self._ttl
        return {"access_token": access_token, "expires_in": self._ttl, "token_type": "Bearer"}

    def valid(self, access_token: str | None, now: float) -> bool:
        if not access_token:
            return False
        expiry = self._live.get(access_token)
        return expiry is not None and now < expiry

    def _check_assertion(self, assertion: str, audiences: set[str]) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            account = self._accounts.get(unverified.get("iss", ""))
            if header.get("alg") != "RS256" or account is None:
                raise GrantError("invalid_grant", "Invalid JWT: unknown issuer.")
            claims = jwt.decode(assertion, account.public_key, ["RS256"], options=_DECODE_OPTIONS)
        except jwt.PyJWTError as exc:
            raise GrantError("invalid_grant", "Invalid JWT Signature.") from exc
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes & FCM_SCOPES:
            raise GrantError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        if claims.get("aud") not in audiences:
            raise GrantError("invalid_grant", "Invalid JWT: audience is not the token endpoint.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise GrantError("invalid_grant", "Invalid JWT: iat and exp are required.")
        now = self._clock()
        if exp - iat > MAX_ASSERTION_LIFETIME_S or iat > now + CLOCK_SKEW_S:
            raise GrantError(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)"
            )
        if exp < now - CLOCK_SKEW_S:
            raise GrantError("invalid_grant", "Invalid JWT: Token must be a short-lived token")
