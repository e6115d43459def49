"""`pushfan devices seed`: bulk-load synthetic devices; `deactivate-stale`: the stale policy."""

from __future__ import annotations

import asyncio
import time

from pushfan import db, stale
from pushfan.seed import print_progress, seed_devices
from pushfan.settings import Settings


def seed(settings: Settings, count: int, ios_fraction: float, apps: list[str] | None) -> int:
    apps = apps or settings.app_names or ["demo"]

    async def go() -> int:
        conn = await db.connect(settings)
        try:
            return await seed_devices(
                conn, count, ios_fraction=ios_fraction, apps=apps, progress=print_progress
            )
        finally:
            await conn.close()

    started = time.monotonic()
    written = asyncio.run(go())
    seconds = time.monotonic() - started
    print(f"seeded {written:,} devices in {seconds:.1f}s ({written / max(seconds, 1e-9):,.0f}/s)")
    return 0


def deactivate_stale(settings: Settings, batch: int) -> int:
    async def go() -> int:
        pool = await db.create_pool(settings, max_size=1)
        try:
            return await stale.deactivate_stale(pool, settings.device_stale_days, batch=batch)
        finally:
            await pool.close()

    done = asyncio.run(go())
    print(f"deactivated {done:,} devices unseen for {settings.device_stale_days} days")
    return 0
