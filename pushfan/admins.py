"""Dashboard admins: usernames with argon2id password hashes (argon2-cffi defaults).

Passwords are low-entropy secrets, so unlike API keys they get a slow, salted hash. A
sign-in for an unknown username still verifies against a dummy hash so its timing does not
tell which usernames exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; this bounds the work a request can cause

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("pushfan-dummy-password")


@dataclass(frozen=True)
class Admin:
    id: int
    username: str


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")


async def create(pool: asyncpg.Pool, username: str, password: str) -> Admin:
    """Add an admin, or set a new password for an existing one."""
    if not USERNAME.match(username):
        raise ValueError("a username is 1 to 64 of A-Z a-z 0-9 _ . @ -")
    check_password(password)
    row = await pool.fetchrow(
        """
        INSERT INTO admins (username, password_hash) VALUES ($1, $2)
        ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash
        RETURNING id, username
        """,
        username,
        _hasher.hash(password),
    )
    assert row is not None
    return Admin(row["id"], row["username"])


async def authenticate(pool: asyncpg.Pool, username: str, password: str) -> Admin | None:
    if len(password) > MAX_PASSWORD or not USERNAME.match(username):
        return None
    row = await pool.fetchrow(
        "SELECT id, username, password_hash FROM admins WHERE username = $1", username
    )
    stored = row["password_hash"] if row else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(stored):
        await pool.execute(
            "UPDATE admins SET password_hash = $2 WHERE id = $1", row["id"], _hasher.hash(password)
        )
    await pool.execute("UPDATE admins SET last_login_at = now() WHERE id = $1", row["id"])
    return Admin(row["id"], row["username"])
