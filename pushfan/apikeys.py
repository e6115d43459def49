"""API keys: random secrets shown once, stored as SHA-256 hashes, checked in constant time.

A key looks like `pf_<id>_<secret>`: the id finds the row, the secret is hashed and compared
with `hmac.compare_digest`. Keys are 256-bit random, so a fast hash is enough (a slow
password hash protects low-entropy secrets, which these are not).

Tenancy: a key belongs to an owner (a team or a service) and is bound to apps. It sees only
what its owner made, for its apps (`ApiKey.sees`); `*` among its apps means every app of
the deployment (what keys made before tenancy got). A key may expire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

SCOPES = ("alerts:send", "notifications:send", "devices:write", "receipts:write", "admin")
# A publishable key (shipped inside an app, so public): it records receipts, nothing else.
PUBLISHABLE = "receipts:write"
ALL_APPS = "*"
OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")
# What keys made without naming an owner and apps get: the defaults of the tenancy migration.
DEFAULT_OWNER = "default"
DASHBOARD_OWNER = "dashboard"  # the owner of alerts sent from the dashboard
RESERVED_OWNERS = frozenset({DASHBOARD_OWNER})


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    owner: str = DEFAULT_OWNER
    apps: tuple[str, ...] = (ALL_APPS,)
    expires_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def all_apps(self) -> bool:
        return ALL_APPS in self.apps

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or datetime.now(UTC))

    def allows(self, scope: str) -> bool:
        return not self.revoked and (scope in self.scopes or "admin" in self.scopes)

    def bound_to(self, app: str) -> bool:
        return self.all_apps or app in self.apps

    def outside(self, apps: Iterable[str]) -> list[str]:
        """The apps among `apps` this key is not bound to, sorted."""
        return sorted({a for a in apps if not self.bound_to(a)})

    def sees(self, owner: str, apps: Sequence[str]) -> bool:
        """Whether this key may see something its `owner` made for `apps` (empty = every
        app of the deployment, which only an all-apps key covers)."""
        if owner != self.owner:
            return False
        if not apps:
            return self.all_apps
        return not self.outside(apps)


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _from_row(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        row["id"],
        row["name"],
        tuple(row["scopes"]),
        row["created_at"],
        row["revoked_at"],
        row["owner"],
        tuple(row["apps"]),
        row["expires_at"],
    )


async def create(
    pool: asyncpg.Pool | asyncpg.Connection,
    name: str,
    scopes: list[str],
    *,
    owner: str = DEFAULT_OWNER,
    apps: Sequence[str] = (ALL_APPS,),
    expires_in: timedelta | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key; returns it with the plaintext, which is never stored or shown again."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    if not OWNER.match(owner) or owner in RESERVED_OWNERS:
        raise ValueError(
            "an owner is 1 to 64 of A-Z a-z 0-9 _ . : @ - (a letter or digit first), "
            f"not {' or '.join(sorted(RESERVED_OWNERS))}"
        )
    if not apps:
        raise ValueError("bind the key to at least one app")
    if PUBLISHABLE in scopes and len(set(scopes)) > 1:
        raise ValueError(f"a publishable key has scope {PUBLISHABLE} and no other")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("an expiry must be in the future")
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    row = await pool.fetchrow(
        """
        INSERT INTO api_keys (id, name, key_hash, scopes, owner, apps, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)
        RETURNING *
        """,
        key_id,
        name,
        _hash(secret),
        sorted(set(scopes)),
        owner,
        sorted(set(apps)),
        expires_in,
    )
    assert row is not None
    return _from_row(row), f"pf_{key_id}_{secret}"


def _parse(presented: str) -> tuple[str, str] | None:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "pf" or not parts[1]:
        return None
    return parts[1], parts[2]


def _check(row: asyncpg.Record | None, secret: str) -> ApiKey | None:
    # Hash and compare even when the id is unknown, so timing says nothing about ids.
    expected = bytes(row["key_hash"]) if row else b"\0" * 32
    if not hmac.compare_digest(expected, _hash(secret)) or row is None:
        return None
    return _from_row(row)


async def authenticate(pool: asyncpg.Pool, presented: str) -> ApiKey | None:
    """The key for this plaintext, revoked or expired or not; None if it matches no key."""
    parsed = _parse(presented)
    if parsed is None:
        return None
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", parsed[0])
    return _check(row, parsed[1])


# How long the API trusts what it read about a key id: a revocation or a scope change takes
# effect on every API process within this many seconds, and so does a key created under an
# id that was asked for (and not found) just before; ids are 32-bit random.
CACHE_TTL_S = 5.0
UNKNOWN_TTL_S = 5.0
CACHE_MAX_ENTRIES = 10_000


class KeyCache:
    """What the database said about recently presented key ids: the row, or that there is
    none (the negative cache). A known key, or any secret presented with a cached id, costs
    no query until the entry expires; an unknown id costs one query per `unknown_ttl_s`.
    Secrets are always checked against the cached hash, in constant time."""

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        max_entries: int = CACHE_MAX_ENTRIES,
        unknown_ttl_s: float = UNKNOWN_TTL_S,
    ) -> None:
        self.ttl_s = ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, asyncpg.Record | None]] = {}

    async def authenticate(self, pool: asyncpg.Pool, presented: str) -> ApiKey | None:
        parsed = _parse(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        entry = self._entries.get(key_id)
        if entry is not None and entry[0] > now:
            return _check(entry[1], secret)
        row = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", key_id)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded memory; refilled on the next requests
        self._entries[key_id] = (now + (self.ttl_s if row else self.unknown_ttl_s), row)
        return _check(row, secret)


async def revoke(pool: asyncpg.Pool, key_id: str) -> bool:
    status = await pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return status.endswith(" 1")


async def list_keys(pool: asyncpg.Pool) -> list[ApiKey]:
    return [_from_row(r) for r in await pool.fetch("SELECT * FROM api_keys ORDER BY created_at")]
