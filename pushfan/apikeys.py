"""API keys: random secrets shown once, stored as SHA-256 hashes, checked in constant time.

A key looks like `pf_<id>_<secret>`: the id finds the row, the secret is hashed and compared
with `hmac.compare_digest`. Keys are 256-bit random, so a fast hash is enough (a slow
password hash protects low-entropy secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

SCOPES = ("alerts:send", "notifications:send", "devices:write", "admin")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        return not self.revoked and (scope in self.scopes or "admin" in self.scopes)


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _from_row(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        row["id"], row["name"], tuple(row["scopes"]), row["created_at"], row["revoked_at"]
    )


async def create(
    pool: asyncpg.Pool | asyncpg.Connection, name: str, scopes: list[str]
) -> tuple[ApiKey, str]:
    """Store a new key; returns it with the plaintext, which is never stored or shown again."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    row = await pool.fetchrow(
        "INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ($1, $2, $3, $4) RETURNING *",
        key_id,
        name,
        _hash(secret),
        sorted(set(scopes)),
    )
    assert row is not None
    return _from_row(row), f"pf_{key_id}_{secret}"


async def authenticate(pool: asyncpg.Pool, presented: str) -> ApiKey | None:
    """The key for this plaintext, revoked or not; None if it matches no key."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "pf":
        return None
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", parts[1])
    # Hash and compare even when the id is unknown, so timing says nothing about ids.
    expected = bytes(row["key_hash"]) if row else b"\0" * 32
    if not hmac.compare_digest(expected, _hash(parts[2])) or row is None:
        return None
    return _from_row(row)


# How long the API trusts what it read about a key: a revocation or a scope change takes
# effect on every API process within this many seconds.
CACHE_TTL_S = 5.0
CACHE_MAX_ENTRIES = 10_000


class KeyCache:
    """Keys recently authenticated, by the SHA-256 of the presented plaintext.

    Saves the database round trip that every authenticated request would otherwise make.
    Only keys the database confirmed are stored (an entry can only be hit by presenting that
    exact plaintext); unknown keys are never cached, so they still cost a query each.
    """

    def __init__(self, ttl_s: float = CACHE_TTL_S, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, ApiKey]] = {}

    async def authenticate(self, pool: asyncpg.Pool, presented: str) -> ApiKey | None:
        digest = _hash(presented)
        now = time.monotonic()
        entry = self._entries.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1]
        key = await authenticate(pool, presented)
        if key is not None:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # bounded memory; refilled on the next requests
            self._entries[digest] = (now + self.ttl_s, key)
        return key


async def revoke(pool: asyncpg.Pool, key_id: str) -> bool:
    status = await pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return status.endswith(" 1")


async def list_keys(pool: asyncpg.Pool) -> list[ApiKey]:
    return [_from_row(r) for r in await pool.fetch("SELECT * FROM api_keys ORDER BY created_at")]
