"""User lists: the users of an audience stored in PostgreSQL and referenced by id.

A list is made in three steps: create it, append its user ids in as many requests as the
body limit needs (text, one id per line, streamed into the table in chunks of CHUNK ids,
never held whole), then complete it. Only a complete list can be used
(`audience.user_list`, `audience.exclude_user_list`), and a complete list never changes,
so an alert's estimate and its expansion read the same members; a list an unfinished alert
uses cannot be deleted. Lists belong to the owner of the key that made them.

An alert's inline `user_ids` / `exclude_user_ids` are stored the same way when the alert is
queued (`store_for_alert`, ids derived from the alert's, so a retry stores nothing twice):
the expansion messages then carry a list id, not the users.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from pushfan.messages import AudienceFilter

CHUNK = 5_000  # ids per INSERT
MAX_USERS = 1_000_000  # per list
MAX_USER_ID = 256  # characters, as for a device's user_id


class ListError(ValueError):
    """Why an append or a use of a list is refused (the message says why)."""


class NotFound(ListError):
    pass


class Completed(ListError):
    """The list is complete: it no longer changes."""


class InUse(ListError):
    """An unfinished alert uses the list."""


@dataclass(frozen=True)
class UserList:
    id: str
    name: str
    users: int
    complete: bool
    created_at: datetime


def _from_row(row: asyncpg.Record) -> UserList:
    return UserList(str(row["id"]), row["name"], row["users"], row["complete"], row["created_at"])


async def create(pool: asyncpg.Pool, owner: str, name: str, created_by: str | None) -> UserList:
    row = await pool.fetchrow(
        "INSERT INTO user_lists (id, owner, name, created_by) VALUES ($1, $2, $3, $4) RETURNING *",
        uuid.uuid4(),
        owner,
        name,
        created_by,
    )
    assert row is not None
    return _from_row(row)


def _uuid(list_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(list_id)
    except ValueError:
        return None


async def get(
    conn: asyncpg.Pool | asyncpg.Connection, owner: str | None, list_id: str
) -> UserList | None:
    """The owner's list (owner None: any owner's, for the dashboard), or None."""
    sql = (
        "SELECT * FROM user_lists WHERE id = $1 AND alert_id IS NULL "
        "AND ($2::text IS NULL OR owner = $2)"
    )
    return await _one(conn, sql, list_id, owner)


async def _one(
    conn: asyncpg.Pool | asyncpg.Connection, sql: str, list_id: str, owner: str | None
) -> UserList | None:
    """The list `sql` returns for ($1 id, $2 owner); None for no row or a malformed id."""
    key = _uuid(list_id)
    if key is None:
        return None
    row = await conn.fetchrow(sql, key, owner)
    return None if row is None else _from_row(row)


async def id_chunks(stream: AsyncIterator[bytes], size: int = CHUNK) -> AsyncIterator[list[str]]:
    """The user ids of a text body, one per line (blank lines skipped, CR LF allowed), in
    lists of at most `size`; ListError for a line that is not a user id."""
    rest = b""
    chunk: list[str] = []
    async for data in stream:
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if _add(chunk, line) >= size:
                yield chunk
                chunk = []
        if len(rest) > 4 * MAX_USER_ID:
            raise ListError(f"a user id is at most {MAX_USER_ID} characters")
    _add(chunk, rest)
    if chunk:
        yield chunk


def _add(chunk: list[str], line: bytes) -> int:
    text = line.rstrip(b"\r").strip()
    if text:
        try:
            user_id = text.decode()
        except UnicodeDecodeError:
            raise ListError("user ids are UTF-8 text, one per line") from None
        if len(user_id) > MAX_USER_ID or not user_id.isprintable():
            raise ListError(f"a user id is 1 to {MAX_USER_ID} printable characters")
        chunk.append(user_id)
    return len(chunk)


async def _insert(conn: asyncpg.Connection, key: uuid.UUID, ids: Sequence[str]) -> int:
    status = await conn.execute(
        "INSERT INTO user_list_members (list_id, user_id) SELECT $1, unnest($2::text[]) "
        "ON CONFLICT DO NOTHING",
        key,
        list(ids),
    )
    return int(status.split()[-1])


async def append(
    pool: asyncpg.Pool, owner: str, list_id: str, chunks: AsyncIterator[list[str]]
) -> UserList:
    """Add the ids (each once: duplicates are ignored) in one transaction; NotFound,
    Completed, or ListError over MAX_USERS (and nothing of this request is kept)."""
    key = _uuid(list_id)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT users, complete FROM user_lists WHERE id = $1 AND owner = $2 "
            "AND alert_id IS NULL FOR UPDATE",
            key,
            owner,
        )
        if key is None or row is None:
            raise NotFound("no such user list")
        if row["complete"]:
            raise Completed("the user list is complete; make a new one")
        users = row["users"]
        async for ids in chunks:
            users += await _insert(conn, key, ids)
            if users > MAX_USERS:
                raise ListError(f"a user list has at most {MAX_USERS} users")
        updated = await conn.fetchrow(
            "UPDATE user_lists SET users = $2 WHERE id = $1 RETURNING *", key, users
        )
    assert updated is not None
    return _from_row(updated)


async def complete(pool: asyncpg.Pool, owner: str, list_id: str) -> UserList | None:
    """Mark the list complete (again: a no-op); None if the owner has no such list."""
    sql = (
        "UPDATE user_lists SET complete = true WHERE id = $1 AND owner = $2 "
        "AND alert_id IS NULL RETURNING *"
    )
    return await _one(pool, sql, list_id, owner)


# An unfinished alert whose audience names the list.
_IN_USE = """
SELECT EXISTS (SELECT 1 FROM alerts WHERE finished_at IS NULL AND status <> 'cancelled'
               AND (audience_filter ->> 'user_list' = $1
                    OR audience_filter ->> 'exclude_user_list' = $1))
"""


async def delete(pool: asyncpg.Pool, owner: str, list_id: str) -> bool:
    """Delete the owner's list and its members; False if there is none; InUse while an
    unfinished alert uses it."""
    key = _uuid(list_id)
    if key is None:
        return False
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            "SELECT 1 FROM user_lists WHERE id = $1 AND owner = $2 AND alert_id IS NULL FOR UPDATE",
            key,
            owner,
        )
        if found is None:
            return False
        if await conn.fetchval(_IN_USE, str(key)):
            raise InUse("an alert that has not finished uses this user list")
        await conn.execute("DELETE FROM user_lists WHERE id = $1", key)
    return True


async def check_usable(
    conn: asyncpg.Pool | asyncpg.Connection, owner: str | None, audience: AudienceFilter
) -> None:
    """ListError unless every list the audience names is the owner's and complete."""
    for list_id in (audience.user_list, audience.exclude_user_list):
        if list_id is None:
            continue
        found = await get(conn, owner, list_id)
        if found is None:
            raise NotFound(f"unknown user list {list_id!r}")
        if not found.complete:
            raise ListError(f"user list {list_id!r} is not complete")


def alert_list_id(alert_id: str, kind: str) -> str:
    """The id of an alert's own list of `kind` ("user_ids", "exclude_user_ids")."""
    return str(uuid.uuid5(uuid.UUID(alert_id), kind))


async def store_for_alert(
    pool: asyncpg.Pool, alert_id: str, owner: str, kind: str, ids: Iterable[str]
) -> str:
    """Store an alert's inline ids as a complete list, once (a retry finds it stored);
    returns its id."""
    list_id = alert_list_id(alert_id, kind)
    key = uuid.UUID(list_id)
    unique = sorted(set(ids))
    async with pool.acquire() as conn, conn.transaction():
        made = await conn.fetchval(
            "INSERT INTO user_lists (id, owner, name, users, complete, alert_id) "
            "VALUES ($1, $2, $3, $4, true, $5) ON CONFLICT (id) DO NOTHING RETURNING 1",
            key,
            owner,
            kind,
            len(unique),
            uuid.UUID(alert_id),
        )
        if made:
            for start in range(0, len(unique), CHUNK):
                await _insert(conn, key, unique[start : start + CHUNK])
    return list_id
