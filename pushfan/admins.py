"""Dashboard admins: usernames with argon2id password hashes (argon2-cffi defaults).

Passwords are low-entropy secrets, so unlike API keys they get a slow, salted hash. A
sign-in for an unknown username still verifies against a dummy hash so its timing does not
tell which usernames exist.

Roles, each allowing what the one before it does: `viewer` (the dashboard, estimates,
every alert's progress), `sender` (+ send a global alert, cancel the dashboard's alerts),
`admin` (+ cancel any alert, those sent through the REST API too). Each admin has a session
epoch; a session lives only while it matches, so moving it (a password reset, "sign out
everywhere") ends every session of that admin at once.
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


ROLES = ("viewer", "sender", "admin")


@dataclass(frozen=True)
class Admin:
    id: int
    username: str
    role: str = "viewer"
    session_epoch: int = 0

    def can(self, role: str) -> bool:
        return includes(self.role, role)


def includes(role: str, required: str) -> bool:
    """Whether `role` allows what `required` does."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(required)


def _from_row(row: asyncpg.Record) -> Admin:
    return Admin(row["id"], row["username"], row["role"], row["session_epoch"])


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")


async def create(
    pool: asyncpg.Pool, username: str, password: str, role: str | None = None
) -> Admin:
    """Add an admin (role `viewer` unless named), or reset an existing one: a new password,
    the role if named (kept otherwise), and every existing session ended."""
    if not USERNAME.match(username):
        raise ValueError("a username is 1 to 64 of A-Z a-z 0-9 _ . @ -")
    if role is not None and role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)}")
    check_password(password)
    row = await pool.fetchrow(
        """
        INSERT INTO admins (username, password_hash, role)
        VALUES ($1, $2, coalesce($3, 'viewer'))
        ON CONFLICT (username) DO UPDATE SET
            password_hash = EXCLUDED.password_hash,
            role = coalesce($3, admins.role),
            session_epoch = admins.session_epoch + 1
        RETURNING id, username, role, session_epoch
        """,
        username,
        _hasher.hash(password),
        role,
    )
    assert row is not None
    return _from_row(row)


async def get(pool: asyncpg.Pool, admin_id: int) -> Admin | None:
    row = await pool.fetchrow(
        "SELECT id, username, role, session_epoch FROM admins WHERE id = $1", admin_id
    )
    return _from_row(row) if row else None


async def end_sessions(pool: asyncpg.Pool, admin_id: int) -> None:
    """Every session of this admin ends (they are checked against the epoch)."""
    await pool.execute(
        "UPDATE admins SET session_epoch = session_epoch + 1 WHERE id = $1", admin_id
    )


async def authenticate(pool: asyncpg.Pool, username: str, password: str) -> Admin | None:
    if len(password) > MAX_PASSWORD or not USERNAME.match(username):
        return None
    row = await pool.fetchrow(
        "SELECT id, username, role, session_epoch, password_hash FROM admins WHERE username = $1",
        username,
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
    return _from_row(row)
