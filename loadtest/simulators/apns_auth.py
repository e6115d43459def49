"""APNs token-based auth: ES256 provider tokens checked against the configured keys.

Real clients reuse one token for up to an hour (Apple refuses a new one more often than every
20 minutes), so verdicts are cached by token string and an ES256 verify happens about once an
hour per key, not once per push. Only the age check runs per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MAX_TOKEN_AGE_S = 3600
CLOCK_SKEW_S = 60
_CACHE_LIMIT = 10_000  # tokens; cleared when full, which costs one verify per live token

_DECODE_OPTIONS: Any = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
}


@dataclass(frozen=True)
class AuthKey:
    key_id: str
    team_id: str
    public_key: EllipticCurvePublicKey

    @classmethod
    def parse(cls, spec: str) -> AuthKey:
        """`KEY_ID:TEAM_ID:PUBLIC_PEM_PATH`, as given to `--auth-key`."""
        key_id, team_id, path = spec.split(":", 2)
        public = load_pem_public_key(Path(path).read_bytes())
        if not isinstance(public, EllipticCurvePublicKey):
            raise ValueError(f"{path}: not an EC public key")
        return cls(key_id, team_id, public)


class ProviderTokenVerifier:
    def __init__(self, keys: list[AuthKey], clock: Callable[[], float] = time.time) -> None:
        self._keys = {key.key_id: key for key in keys}
        self._clock = clock
        self._issued_at: dict[str, float] = {}  # verified token -> its iat
        self._refused: dict[str, str] = {}  # refused token -> reason

    def check(self, token: str | None, now: float) -> str | None:
        """None when the token is good now, else Apple's reason."""
        if not token:
            return "MissingProviderToken"
        iat = self._issued_at.get(token)
        if iat is None:
            refused = self._refused.get(token)
            if refused is not None:
                return refused
            verdict = self._verify(token, now)
            if isinstance(verdict, str):
                _bounded_put(self._refused, token, verdict)
                return verdict
            iat = verdict
            _bounded_put(self._issued_at, token, iat)
        if now - iat > MAX_TOKEN_AGE_S:
            return "ExpiredProviderToken"
        return None

    def _verify(self, token: str, now: float) -> float | str:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid", ""))
            if header.get("alg") != "ES256" or key is None:
                return "InvalidProviderToken"
            claims = jwt.decode(token, key.public_key, ["ES256"], options=_DECODE_OPTIONS)
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        iat = claims.get("iat")
        if claims.get("iss") != key.team_id or not isinstance(iat, int | float):
            return "InvalidProviderToken"
        if iat > now + CLOCK_SKEW_S:
            return "InvalidProviderToken"
        return float(iat)


def _bounded_put(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
