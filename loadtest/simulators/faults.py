"""Fault injection: dead tokens, 5xx answers, rate limits, latency, all reproducible by seed.

Dead tokens are chosen by a keyed hash of (seed, token), so the same device is dead on every
run whatever the request order; the other faults draw from one seeded RNG.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

_TWO_64 = float(2**64)


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    dead_fraction: float = 0.0
    error_fraction: float = 0.0  # answered 500 or 503, half each
    rate_limit: float = 0.0  # requests/s above which the server answers 429; 0 = off
    quota_per_minute: int = 0  # FCM per-project quota; 0 = off
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # latency is uniform in [latency - jitter, latency + jitter]
    drop_connection_every: int = 0  # abort the connection carrying every Nth request; 0 = off


def is_dead(seed: int, token: str, fraction: float) -> bool:
    """Whether `token` is a dead device: deterministic per (seed, token)."""
    if fraction <= 0.0:
        return False
    digest = hashlib.blake2b(
        token.encode(), key=seed.to_bytes(8, "big", signed=True), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") / _TWO_64 < fraction


class TokenBucket:
    """Allows `rate` requests/s with a burst of one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = rate
        self._stamp = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class MinuteQuota:
    """A per-key quota over one-minute windows, like FCM's per-project quota.

    Windows start at the first request rather than on the wall-clock minute, so a test that
    sends a burst sees the same answers on every run.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._origin: float | None = None
        self._window = -1
        self._used: dict[str, int] = {}

    def take(self, key: str) -> int:
        """0 when allowed, else the seconds until the window resets (for Retry-After)."""
        now = self._clock()
        if self._origin is None:
            self._origin = now
        elapsed = now - self._origin
        window = int(elapsed // 60)
        if window != self._window:
            self._window, self._used = window, {}
        used = self._used.get(key, 0)
        if used < self._limit:
            self._used[key] = used + 1
            return 0
        return max(1, math.ceil((window + 1) * 60 - elapsed))


class Faults:
    """The per-process fault state one simulator consults on every push."""

    def __init__(self, config: FaultConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._bucket = TokenBucket(config.rate_limit, clock) if config.rate_limit > 0 else None
        self._quota = (
            MinuteQuota(config.quota_per_minute, clock) if config.quota_per_minute > 0 else None
        )
        self.has_latency = config.latency_ms > 0 or config.latency_jitter_ms > 0

    def rate_limited(self) -> bool:
        return self._bucket is not None and not self._bucket.allow()

    def quota_retry_after(self, key: str) -> int:
        return self._quota.take(key) if self._quota is not None else 0

    def injected_error(self) -> int:
        """0, or the 5xx status this request is answered with."""
        fraction = self.config.error_fraction
        if fraction <= 0.0 or self._rng.random() >= fraction:
            return 0
        return 500 if self._rng.random() < 0.5 else 503

    def latency_s(self) -> float:
        base, jitter = self.config.latency_ms, self.config.latency_jitter_ms
        if jitter > 0:
            base += self._rng.uniform(-jitter, jitter)
        return max(0.0, base) / 1000.0

    def dead(self, token: str) -> bool:
        return is_dead(self.config.seed, token, self.config.dead_fraction)
