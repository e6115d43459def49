"""The browser side of the Web Push simulator's subscriptions, derived from (seed, id).

A subscription's private key and auth secret are HMAC-derived from the simulator's seed and
the subscription id (the endpoint's last path segment), so a seeder can make 10^5
subscriptions without asking the simulator, and the simulator finds the keys of any
endpoint it is sent to without storing them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushfan.webpush import b64url

# The order of P-256: a derived scalar must be in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PUSH_PATH = "/push/"


@dataclass(frozen=True)
class SimSubscription:
    id: str
    private: ec.EllipticCurvePrivateKey
    auth: bytes

    def p256dh(self) -> str:
        return b64url(
            self.private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def as_json(self, base_url: str) -> dict[str, object]:
        """What a browser's `PushSubscription.toJSON()` gives."""
        return {
            "endpoint": base_url + PUSH_PATH + self.id,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh(), "auth": b64url(self.auth)},
        }


def _mac(seed: int, label: str, sub_id: str) -> bytes:
    key = f"pushfan-sim-webpush:{seed}".encode()
    return hmac.new(key, f"{label}:{sub_id}".encode(), hashlib.sha256).digest()


@lru_cache(maxsize=200_000)
def derive(seed: int, sub_id: str) -> SimSubscription:
    scalar = int.from_bytes(_mac(seed, "key", sub_id), "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    return SimSubscription(sub_id, private, _mac(seed, "auth", sub_id)[:16])


def web_subscription(seed: int, base_url: str) -> Callable[[int], tuple[str, str]]:
    """n -> (endpoint, 'p256dh auth'): a seeder's web devices on the simulator at base_url."""

    def make(n: int) -> tuple[str, str]:
        sub = derive.__wrapped__(seed, f"d{n}")  # not cached: a seeder makes each once
        return base_url + PUSH_PATH + sub.id, f"{sub.p256dh()} {b64url(sub.auth)}"

    return make
