"""What the durable record of outcomes costs a sender: client CPU and wall time per batch of
500 delivered pushes written with `pushfan.outcome_record.write_outcomes` (synchronous
commit), in a throw-away schema of the configured PostgreSQL.

    python -m loadtest.record_cost [--batches N]
"""

from __future__ import annotations

import argparse
import secrets
import time

import uvloop

from pushfan import alerts, db, outcome_record
from pushfan.alerts import AlertIn
from pushfan.messages import AudienceFilter
from pushfan.outcomes import Outcome
from pushfan.progress import outcome_args
from pushfan.settings import Settings

BATCH = 500


async def measure(batches: int) -> dict[str, float]:
    settings = Settings(database_schema=f"record_cost_{secrets.token_hex(3)}")
    await db.migrate(settings)
    pool = await db.create_pool(settings, min_size=1, max_size=1)
    try:
        alert, _ = await alerts.create(
            pool, AlertIn("t", "b", {}, AudienceFilter(), 60, "high"), None, "record_cost"
        )
        ids = list(range(1, BATCH + 1))
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(batches):
            sizes, packed = outcome_args({Outcome.DELIVERED: ids})
            await outcome_record.write_outcomes(pool, alert.id, f"b{n}", 0, sizes, packed)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await pool.close()
        await db.drop_schema(settings)
    return {
        "cpu_us_per_batch": round(1e6 * cpu / batches, 1),
        "cpu_us_per_push": round(1e6 * cpu / batches / BATCH, 2),
        "wall_ms_per_batch": round(1e3 * wall / batches, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=400)
    args = parser.parse_args()
    print(uvloop.run(measure(args.batches)))


if __name__ == "__main__":
    main()
