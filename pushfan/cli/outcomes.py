"""`pushfan outcomes prune`: the outcome record's retention (pushfan.outcome_retention)."""

from __future__ import annotations

import asyncio

from pushfan import db, outcome_retention
from pushfan.settings import Settings


def prune(settings: Settings, batch: int) -> int:
    days = settings.outcome_retention_days

    async def go() -> int:
        pool = await db.create_pool(settings, max_size=1)
        try:
            return await outcome_retention.prune(pool, days, batch=batch)
        finally:
            await pool.close()

    done = asyncio.run(go())
    print(f"deleted {done:,} outcome rows of alerts finished over {days} days ago")
    return 0
