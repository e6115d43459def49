"""Synthetic devices for demos, benchmarks and tests, loaded with COPY in chunks.

Tokens have the real shapes: APNs device tokens are 64 hex characters; FCM registration
tokens are ~163 characters of [A-Za-z0-9_:-] (an instance id, ':APA91b', then base64url).
Web devices (a `web_fraction` of them) need real subscriptions, whose keys only the push
service's side can make: the caller passes `web_subscription(n) -> (endpoint, keys)`.
APNs and FCM tokens go through registry.normalise_token, as a registered token does.

APNs sandbox devices (`sandbox_fraction` of the iOS ones) get tokens that start with
SANDBOX_TOKEN_PREFIX and production ones never do: the APNs simulator started with
`--environment` tells a token's environment by that rule, as Apple's hosts know it, and
answers BadDeviceToken on the wrong host.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable, Iterator, Sequence

import asyncpg

from pushfan.registry import normalise_token

TAGS = ("news", "sports", "weather", "offers", "beta")
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR")
ZONES = ("America/New_York", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "UTC")
COLUMNS = (
    "platform",
    "app",
    "token",
    "user_id",
    "tags",
    "locale",
    "time_zone",
    "push_keys",
    "apns_environment",
)
WebSubscriptionFn = Callable[[int], tuple[str, str]]
SANDBOX_TOKEN_PREFIX = "5a4db0c5"


def apns_token(sandbox: bool = False) -> str:
    if sandbox:
        return SANDBOX_TOKEN_PREFIX + os.urandom(28).hex()
    while True:
        token = os.urandom(32).hex()
        if not token.startswith(SANDBOX_TOKEN_PREFIX):
            return token


def is_sandbox_token(token: str) -> bool:
    return token.startswith(SANDBOX_TOKEN_PREFIX)


def fcm_token() -> str:
    instance = base64.urlsafe_b64encode(os.urandom(9)).decode()[:11]
    rest = base64.urlsafe_b64encode(os.urandom(110)).decode().rstrip("=")[:146]
    return f"{instance}:APA91b{rest}"


def _rows(
    start: int,
    count: int,
    ios_fraction: float,
    apps: Sequence[str],
    web_fraction: float = 0.0,
    web_subscription: WebSubscriptionFn | None = None,
    sandbox_fraction: float = 0.0,
) -> Iterator[tuple]:
    # A stride pattern spreads iOS, Android (and web) evenly through the id space, so any
    # shard holds every provider (a real registry is mixed too); another spreads the iOS
    # devices registered on the APNs sandbox.
    ios_per_1000 = round(ios_fraction * 1000)
    web_per_1000 = round(web_fraction * 1000)
    sandbox_per_1000 = round(sandbox_fraction * 1000)
    for n in range(start, start + count):
        keys = None
        sandbox = False
        if web_subscription is not None and (n * 104729 + 500) % 1000 < web_per_1000:
            platform = "web"
            token, keys = web_subscription(n)
        elif (n * 7919) % 1000 < ios_per_1000:
            sandbox = (n * 104729 // 1000) % 1000 < sandbox_per_1000
            platform, token = "ios", normalise_token("ios", apns_token(sandbox))
        else:
            platform, token = "android", normalise_token("android", fcm_token())
        yield (
            platform,
            apps[n % len(apps)],
            token,
            f"user-{n}",
            [TAGS[n % len(TAGS)], TAGS[(n // 7) % len(TAGS)]],
            LOCALES[n % len(LOCALES)],
            ZONES[n % len(ZONES)],
            keys,
            "sandbox" if sandbox else "production",
        )


ProgressFn = Callable[[int, int], None]


def print_progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rseeding  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def seed_devices(
    conn: asyncpg.Connection,
    count: int,
    *,
    ios_fraction: float = 0.5,
    sandbox_fraction: float = 0.0,
    apps: Sequence[str] = ("demo",),
    chunk: int = 50_000,
    progress: ProgressFn | None = None,
    web_fraction: float = 0.0,
    web_subscription: WebSubscriptionFn | None = None,
) -> int:
    """Append `count` synthetic active devices; returns how many were written. A
    `web_fraction` of them are web subscriptions made by `web_subscription`; of the rest, an
    `ios_fraction` are iOS."""
    if not 0.0 <= ios_fraction <= 1.0 or not 0.0 <= web_fraction <= 1.0:
        raise ValueError("ios_fraction and web_fraction must be between 0 and 1")
    if web_fraction and web_subscription is None:
        raise ValueError("web devices need web_subscription")
    if not 0.0 <= sandbox_fraction <= 1.0:
        raise ValueError("sandbox_fraction must be between 0 and 1")
    if not apps:
        raise ValueError("at least one app is needed")
    base = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM devices"))
    written = 0
    while written < count:
        n = min(chunk, count - written)
        await conn.copy_records_to_table(
            "devices",
            records=_rows(
                base + written,
                n,
                ios_fraction,
                apps,
                web_fraction,
                web_subscription,
                sandbox_fraction,
            ),
            columns=COLUMNS,
        )
        written += n
        if progress:
            progress(written, count)
    await conn.execute("ANALYZE devices")
    return written
