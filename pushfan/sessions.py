"""Server-side dashboard sessions in Redis.

The cookie holds a random 256-bit id; Redis holds only its SHA-256 (a leaked Redis dump
gives no usable cookie) with the admin and the session's CSRF token, expiring after
`session_ttl_s`. Signing out deletes the key, so a copied cookie dies with it. A session
also records its admin's session epoch when it started; the dashboard admits it only while
the admin's epoch is still that (pushfan.admins), and takes the role from the admin's row,
so a password reset or "sign out everywhere" ends it, and a role change applies at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from pushfan.admins import Admin
from pushfan.keys import RedisKeys


@dataclass(frozen=True)
class Session:
    admin_id: int
    username: str
    csrf_token: str
    epoch: int = 0
    role: str = "viewer"  # as of when it started; the dashboard reads the live one

    @property
    def actor(self) -> str:
        return f"admin:{self.username}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Sessions:
    def __init__(self, redis: aioredis.Redis, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self.ttl_s = ttl_s

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return self._keys.session(digest)

    async def start(self, admin: Admin) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown to the browser only) and it."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            admin.id, admin.username, secrets.token_urlsafe(32), admin.session_epoch, admin.role
        )
        key = self._key(session_id)
        await self._redis.hset(
            key,
            mapping={
                "admin_id": session.admin_id,
                "username": session.username,
                "csrf": session.csrf_token,
                "epoch": session.epoch,
                "role": session.role,
            },
        )
        await self._redis.expire(key, self.ttl_s)
        return session_id, session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        raw = await self._redis.hgetall(self._key(session_id))
        if not raw:
            return None
        found = {_text(k): _text(v) for k, v in raw.items()}
        return Session(
            int(found["admin_id"]),
            found["username"],
            found["csrf"],
            int(found.get("epoch", -1)),
            found.get("role", "viewer"),
        )

    async def end(self, session_id: str) -> None:
        await self._redis.delete(self._key(session_id))
