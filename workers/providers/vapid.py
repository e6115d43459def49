"""VAPID (RFC 8292): the app server's identity towards the push services.

`Authorization: vapid t=<JWT>, k=<public key>`: the JWT is ES256-signed with the app's P-256
key, `aud` the push service's origin, `exp` at most 24 h ahead, `sub` a contact URI. One
token per origin is signed and reused until it is a quarter of its life from expiry.
"""

from __future__ import annotations

import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushfan.webpush import b64url, b64url_decode

TOKEN_LIFETIME_S = 12 * 3600  # RFC 8292 §2: exp no more than 24 hours ahead
RENEW_BEFORE_S = TOKEN_LIFETIME_S // 4


def load_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A PEM private key, or the raw 32-byte private value in base64url (what web-push
    tools print as the 'private key')."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        value = int.from_bytes(b64url_decode(text), "big")
        key = ec.derive_private_key(value, ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("a VAPID key is a P-256 private key")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


class VapidSigner:
    """The Authorization header per push-service origin, signed once and reused."""

    def __init__(self, key_text: str, subject: str, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._key = load_key(key_text)
        self._subject = subject
        self._lifetime = lifetime_s
        self.public_key = public_key_b64(self._key)
        self._cache: dict[str, tuple[str, float]] = {}  # origin -> (header, renew at)

    def header(self, origin: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        cached = self._cache.get(origin)
        if cached is not None and now < cached[1]:
            return cached[0]
        expires = int(now) + self._lifetime
        token = jwt.encode(
            {"aud": origin, "exp": expires, "sub": self._subject}, self._key, algorithm="ES256"
        )
        value = f"vapid t={token}, k={self.public_key}"
        self._cache[origin] = (value, expires - min(RENEW_BEFORE_S, self._lifetime // 4))
        return value

    def clear(self) -> None:
        """A push service refused a token (401/403): sign new ones for the retries."""
        self._cache.clear()
