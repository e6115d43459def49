"""The dry run of a global alert: who, how big, how long; nothing is sent or stored.

The audience breakdown is one GROUP BY with the condition the expansion uses
(pushfan.audience_sql), so its total is the number of devices the alert would target now.
The duration is predicted from the configured quotas (per provider and app) and the senders'
capacity (`sender_capacity_per_s`, per provider, as measured by `pushfan bench`).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

from pushfan import payloads, webpush
from pushfan.audience_sql import condition, excluded, without_exclusions
from pushfan.messages import AudienceFilter, Notification
from pushfan.provider import PLATFORM_PROVIDER
from pushfan.settings import Settings

TYPICAL_FCM_TOKEN = 163


@dataclass(frozen=True)
class Bucket:
    provider: str
    app: str
    locale: str | None  # lower-case, '-' separated; None when the device sent none
    devices: int


_GROUPS = (
    "SELECT platform, app, lower(replace(locale, '_', '-')) AS locale, count(*) AS n "
    "FROM devices WHERE active{0} GROUP BY 1, 2, 3"
)


async def breakdown(
    pool: asyncpg.Pool | asyncpg.Connection, audience: AudienceFilter
) -> list[Bucket]:
    """The audience per (provider, app, locale), largest first. With exclusions, the groups
    before them less the devices they remove, in one statement (as
    registry.count_audience counts)."""
    base = without_exclusions(audience)
    if base is None:
        where, params = condition(audience, 1)
        rows = await pool.fetch(f"{_GROUPS.format(where)} ORDER BY n DESC, 1, 2, 3", *params)
    else:
        where, params = condition(base, 1)
        removed, more = excluded(audience, 1 + len(params))
        rows = await pool.fetch(
            f"WITH b AS ({_GROUPS.format(where)}), r AS ({_GROUPS.format(where + removed)}) "
            "SELECT b.platform, b.app, b.locale, b.n - coalesce(r.n, 0) AS n FROM b "
            "LEFT JOIN r ON b.platform = r.platform AND b.app = r.app "
            "AND b.locale IS NOT DISTINCT FROM r.locale "
            "WHERE b.n > coalesce(r.n, 0) ORDER BY n DESC, 1, 2, 3",
            *params,
            *more,
        )
    return [Bucket(PLATFORM_PROVIDER[r["platform"]], r["app"], r["locale"], r["n"]) for r in rows]


async def sample_tokens(
    pool: asyncpg.Pool, audience: AudienceFilter, app: str, platform: str, limit: int
) -> list[str]:
    """A few real tokens of the audience on one app and platform (for validate_only)."""
    where, params = condition(audience, 4)
    rows = await pool.fetch(
        f"SELECT token FROM devices WHERE active AND app = $1 AND platform = $2{where} LIMIT $3",
        app,
        platform,
        limit,
        *params,
    )
    return [r["token"] for r in rows]


@dataclass(frozen=True)
class Rendered:
    provider: str
    bytes: int
    payload: dict[str, object]


def rendered(notification: Notification, providers: set[str]) -> list[Rendered]:
    """The body each provider would get, and its size as the provider counts it."""
    out = []
    if "apns" in providers:
        body = payloads.apns_body(notification)
        out.append(Rendered("apns", len(body), orjson.loads(body)))
    if "fcm" in providers:
        before, after = payloads.fcm_body_parts(notification)
        message = payloads.fcm_message(notification, "<token>")
        out.append(Rendered("fcm", len(before) + len(after) + TYPICAL_FCM_TOKEN, message))
    if "web" in providers:
        body = webpush.render(notification)  # encrypted: the aes128gcm overhead counts
        out.append(Rendered("web", len(body) + webpush.BODY_OVERHEAD_BYTES, orjson.loads(body)))
    return out


def predicted_seconds(settings: Settings, buckets: list[Bucket]) -> dict[str, float]:
    """Seconds per provider: the slower of the senders' capacity for the provider's whole
    audience and each app's quota for its share (providers and apps are sent in parallel)."""
    per_app: dict[tuple[str, str], int] = {}
    for b in buckets:
        per_app[b.provider, b.app] = per_app.get((b.provider, b.app), 0) + b.devices
    seconds: dict[str, float] = {}
    for provider in sorted({p for p, _ in per_app}):
        total = sum(n for (p, _), n in per_app.items() if p == provider)
        worst = total / settings.sender_capacity_per_s
        for (p, app), n in per_app.items():
            rate = settings.rate_limit(p, app)
            if p == provider and rate > 0:
                worst = max(worst, n / rate)
        seconds[provider] = round(worst, 1)
    return seconds
