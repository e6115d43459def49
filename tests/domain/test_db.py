"""Pools: the durable one the API writes through, the asynchronous one of the workers."""

from __future__ import annotations

from pushfan import db
from pushfan.settings import Settings


async def test_pools_commit_durably_unless_asked_not_to(settings: Settings) -> None:
    for durable, expected in ((True, "on"), (False, "off")):
        pool = await db.create_pool(settings, min_size=1, max_size=1, durable=durable)
        try:
            assert await pool.fetchval("SHOW synchronous_commit") == expected
            assert await pool.fetchval("SHOW search_path") == settings.database_schema
        finally:
            await pool.close()
