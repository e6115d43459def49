"""PostgreSQL connection pool bound to the configured schema, and the migration runner."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg
from asyncpg.pool import Pool

from pushfan.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Pool", "connect", "create_pool", "drop_schema", "migrate"]


class _PoolConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query (RESET ALL, CLOSE ALL,
    UNLISTEN *, pg_advisory_unlock_all): a round trip on every release, for session state
    pushfan never sets on pooled connections (no SET, LISTEN, advisory locks or cursors
    outside transactions; migrate() uses its own connection). Open transactions are still
    rolled back by asyncpg on release."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(
    settings: Settings,
    *,
    min_size: int = 1,
    max_size: int = 10,
    durable: bool = True,
    command_timeout_s: float | None = None,
) -> Pool:
    """A pool whose connections resolve unqualified names in the configured schema.

    `durable=False` commits asynchronously (synchronous_commit off): a commit returns before
    its WAL reaches disk, so a crash of the PostgreSQL server (not of this process) can lose
    the last few hundred ms of such commits, never corrupt anything. It is for writes whose
    loss is harmless or can be redone (docs/performance.md: what a synchronous commit costs).

    Connecting fails after `database_timeout_s` (an unreachable server is an error, not a
    hang); `command_timeout_s` bounds each statement (None: unbounded)."""
    server_settings = {"search_path": settings.database_schema}
    if not durable:
        server_settings["synchronous_commit"] = "off"
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=min_size,
        max_size=max_size,
        server_settings=server_settings,
        connection_class=_PoolConnection,
        timeout=settings.database_timeout_s,
        command_timeout=command_timeout_s,
    )
    assert pool is not None
    return pool


async def connect(settings: Settings) -> asyncpg.Connection:
    """One connection bound to the configured schema, for scripts that seed and set up."""
    return await asyncpg.connect(
        settings.database_url.get_secret_value(),
        server_settings={"search_path": settings.database_schema},
    )


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("pushfan") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text()) for f in files]


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return their names."""
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    schema = settings.database_schema
    applied: list[str] = []
    try:
        # One migrator at a time per schema, even with several pods starting together.
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in _migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            log.info("applied migration %s to schema %s", name, schema)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", schema)
        await conn.close()
    return applied


async def drop_schema(settings: Settings) -> None:
    """Remove the configured schema and everything in it (tests and demos). A session still
    holding a lock in the schema (a worker that was not closed) would make the DROP wait
    for ever: after a short wait, such sessions are ended and the DROP is tried again."""
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    drop = f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'
    try:
        await conn.execute("SET lock_timeout = '5s'")
        for _ in range(3):
            try:
                await conn.execute(drop)
                return
            except asyncpg.LockNotAvailableError:
                await conn.execute(_END_LOCK_HOLDERS, settings.database_schema)
        await conn.execute(drop)
    finally:
        await conn.close()


# The other sessions holding a lock on a relation of schema $1.
_END_LOCK_HOLDERS = """
SELECT pg_terminate_backend(l.pid)
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()
"""
