"""The device registry: register, refresh, remove, deactivate, and stream or count an audience
(the same compiled condition for both, pushfan.audience_sql)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pushfan.apikeys import DEFAULT_OWNER
from pushfan.audience_sql import condition, excluded, without_exclusions
from pushfan.messages import AudienceFilter
from pushfan.versions import version_key

# The token a send batch carries: a web target's is its endpoint, keys and expiry in one
# string (pushfan.webpush.wire_token), so the sender never reads the database.
SEND_TOKEN = (
    "CASE WHEN {0}push_keys IS NULL THEN {0}token ELSE {0}token || ' ' || {0}push_keys"
    " || COALESCE(' ' || floor(extract(epoch FROM {0}subscription_expires_at))::bigint, '')"
    " END"
)


# Each platform's token shape, matched against the whole token (re.fullmatch, ASCII only):
# no surrounding whitespace or newline is part of a token.
_TOKEN_SHAPES = {
    "ios": (re.compile(r"[0-9a-fA-F]{64}"), "an APNs device token is 64 hex characters"),
    "android": (
        re.compile(r"[A-Za-z0-9_:\-]{32,4096}"),
        "an FCM registration token is 32 to 4096 characters of [A-Za-z0-9_:-]",
    ),
}


class BadToken(ValueError):
    """Not a token of its platform; the message says what one looks like."""


def normalise_token(platform: str, token: str) -> str:
    """The one stored form of an APNs or FCM device token, or BadToken.

    Every way such a token enters (registration, notifications by token, seeding) goes
    through here, so one phone is one device: APNs tokens are hex, which Apple compares
    without case, so they are stored lower-case; FCM tokens are case-sensitive and kept.
    """
    shape = _TOKEN_SHAPES.get(platform)
    if shape is None:
        raise BadToken(f"no device token for platform {platform!r}")
    pattern, rule = shape
    if not pattern.fullmatch(token):
        raise BadToken(f"bad token: {rule}")
    return token.lower() if platform == "ios" else token


@dataclass(frozen=True)
class DeviceIn:
    platform: str
    app: str
    token: str
    user_id: str | None = None
    tags: Sequence[str] = ()
    locale: str | None = None
    time_zone: str | None = None
    push_keys: str | None = None  # web only: 'p256dh auth' (pushfan.webpush)
    subscription_expires_at: datetime | None = None  # web only, as the browser said
    apns_environment: str = "production"
    app_version: str | None = None
    os_version: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    id: int
    platform: str
    app: str
    token: str
    environment: str = "production"  # the APNs host that serves it (iOS only)
    locale: str | None = None  # as the device registered it (pushfan.localization)


# The columns of a Target, in its field order, for the queries that stream them.
TARGET_COLUMNS = f"id, platform, app, {SEND_TOKEN.format('')} AS token, apns_environment, locale"


def target_of(row: asyncpg.Record) -> Target:
    return Target(row[0], row[1], row[2], row[3], row[4], row[5])


async def upsert(
    conn: asyncpg.Connection | asyncpg.Pool, device: DeviceIn, owner: str = DEFAULT_OWNER
) -> tuple[int, bool] | None:
    """Register or refresh a device; returns (id, created). Re-registering reactivates it,
    replaces what it reports (tags, versions, attributes...) and marks it seen now.

    A device stays with the owner that registered it first: another owner may refresh it
    only with the same user_id (None is returned otherwise, and nothing changes), so it
    cannot take over a phone's pushes by binding its token to another user."""
    row = await conn.fetchrow(
        """
        INSERT INTO devices (platform, app, token, user_id, tags, locale, time_zone, owner,
                             push_keys, subscription_expires_at, apns_environment,
                             app_version, app_version_key, os_version, os_version_key,
                             attributes)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb)
        ON CONFLICT (app, platform, token) DO UPDATE SET
            user_id = EXCLUDED.user_id, tags = EXCLUDED.tags, locale = EXCLUDED.locale,
            time_zone = EXCLUDED.time_zone, push_keys = EXCLUDED.push_keys,
            subscription_expires_at = EXCLUDED.subscription_expires_at,
            apns_environment = EXCLUDED.apns_environment,
            app_version = EXCLUDED.app_version, app_version_key = EXCLUDED.app_version_key,
            os_version = EXCLUDED.os_version, os_version_key = EXCLUDED.os_version_key,
            attributes = EXCLUDED.attributes,
            active = true, deactivated_at = NULL, updated_at = now(), last_seen = now()
        WHERE devices.owner = EXCLUDED.owner
           OR devices.user_id IS NOT DISTINCT FROM EXCLUDED.user_id
        RETURNING id, (xmax = 0) AS created
        """,
        device.platform,
        device.app,
        device.token,
        device.user_id,
        list(device.tags),
        device.locale,
        device.time_zone,
        owner,
        device.push_keys,
        device.subscription_expires_at,
        device.apns_environment,
        device.app_version,
        version_key(device.app_version),
        device.os_version,
        version_key(device.os_version),
        orjson.dumps(device.attributes).decode(),
    )
    if row is None:
        return None
    return row["id"], row["created"]


async def seen(
    conn: asyncpg.Connection | asyncpg.Pool,
    device_id: int,
    *,
    owner: str | None = None,
    apps: Sequence[str] | None = None,
) -> bool:
    """Mark a device seen now (one indexed update); with `owner` / `apps` scoped like
    delete(). False if there is no such device (for this caller)."""
    status = await conn.execute(
        "UPDATE devices SET last_seen = now() WHERE id = $1 "
        "AND ($2::text IS NULL OR owner = $2) AND ($3::text[] IS NULL OR app = ANY($3))",
        device_id,
        owner,
        None if apps is None else list(apps),
    )
    return status.endswith(" 1")


async def delete(
    conn: asyncpg.Connection | asyncpg.Pool,
    device_id: int,
    *,
    owner: str | None = None,
    apps: Sequence[str] | None = None,
) -> bool:
    """Remove a device; with `owner` / `apps`, only one that owner registered in those apps
    (False, as for an unknown id, otherwise)."""
    status = await conn.execute(
        "DELETE FROM devices WHERE id = $1 "
        "AND ($2::text IS NULL OR owner = $2) AND ($3::text[] IS NULL OR app = ANY($3))",
        device_id,
        owner,
        None if apps is None else list(apps),
    )
    return status.endswith(" 1")


async def deactivate(conn: asyncpg.Connection | asyncpg.Pool, device_ids: Sequence[int]) -> int:
    """Mark devices whose token the provider reported dead; one statement per batch."""
    if not device_ids:
        return 0
    status = await conn.execute(
        "UPDATE devices SET active = false, deactivated_at = now(), updated_at = now() "
        "WHERE id = ANY($1::bigint[]) AND active",
        list(device_ids),
    )
    return int(status.split()[-1])


async def id_range(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[int, int] | None:
    """[lo, hi) covering every device id; two index lookups, whatever the table size."""
    row = await conn.fetchrow("SELECT min(id) AS lo, max(id) AS hi FROM devices")
    if row is None or row["lo"] is None:
        return None
    return row["lo"], row["hi"] + 1


async def stream_targets(
    conn: asyncpg.Connection | asyncpg.Pool,
    lo: int,
    hi: int,
    audience: AudienceFilter,
    page_size: int,
) -> AsyncIterator[list[Target]]:
    """Yield pages of active matching devices with lo <= id < hi, by keyset on id.

    Each page is one indexed range query starting after the last id seen: no OFFSET, no
    server-side cursor held across pages, and at most `page_size` rows in memory.
    """
    where, params = condition(audience, 4)
    sql = (
        f"SELECT {TARGET_COLUMNS} FROM devices "
        f"WHERE active AND id >= $1 AND id < $2{where} ORDER BY id LIMIT $3"
    )
    cursor = lo
    while True:
        rows = await conn.fetch(sql, cursor, hi, page_size, *params)
        if not rows:
            return
        yield [target_of(r) for r in rows]
        if len(rows) < page_size:
            return
        cursor = rows[-1]["id"] + 1


async def count_audience(conn: asyncpg.Connection | asyncpg.Pool, audience: AudienceFilter) -> int:
    """The number of devices the expansion of `audience` targets, for the same data.

    With exclusions it is the audience before them less the devices they remove, in one
    statement (one snapshot): the removed ones are found by index probes, so the count of
    a broad audience never tests each of its rows against the exclusion lists."""
    base = without_exclusions(audience)
    if base is None:
        where, params = condition(audience, 1)
        value = await conn.fetchval(f"SELECT count(*) FROM devices WHERE active{where}", *params)
        return int(value)
    where, params = condition(base, 1)
    removed, more = excluded(audience, 1 + len(params))
    value = await conn.fetchval(
        f"SELECT (SELECT count(*) FROM devices WHERE active{where}) - "
        f"(SELECT count(*) FROM devices WHERE active{where}{removed})",
        *params,
        *more,
    )
    return int(value)
