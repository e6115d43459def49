"""Does the trigger's response time depend on the audience? (issue: one global alert)

Seeds one schema with 1,000,000 devices of app "big" and 1,000 of app "small", starts only
the API (no workers: nothing is sent), then posts 100 alerts to each audience, interleaved
so both see the same machine noise, and prints p50/p99 per audience and their ratio.

    python loadtest/trigger_latency.py [--big 1000000] [--small 1000] [--calls 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from typing import Any

import httpx

from loadtest.stack import Stack
from pushfan import apikeys, db
from pushfan.seed import print_progress, seed_devices
from pushfan.settings import Settings


async def prepare_audiences(settings: Settings, big: int, small: int) -> str:
    await db.drop_schema(settings)
    await db.migrate(settings)
    conn = await db.connect(settings)
    try:
        await seed_devices(conn, big, apps=["big"], progress=print_progress)
        await seed_devices(conn, small, apps=["small"])
        _, plaintext = await apikeys.create(conn, "latency", ["alerts:send"])
    finally:
        await conn.close()
    return plaintext


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    name = f"latency_{secrets.token_hex(3)}"
    # The per-key trigger limit is policy, not capacity: off for this measurement.
    stack = Stack.create(name, apps=("big", "small"), extra_env={"PUSHFAN_TRIGGER_RATE_PER_S": "0"})
    settings = Settings(database_schema=name, queue_prefix=name, redis_prefix=f"{name}:")
    try:
        key = asyncio.run(prepare_audiences(settings, args.big, args.small))
        stack.start_api()
        client = httpx.Client(base_url=stack.api_url, timeout=10)
        headers = {"authorization": f"Bearer {key}"}
        for _ in range(10):  # warm up connections and caches
            client.post("/v1/alerts", json={"title": "w", "body": "w"}, headers=headers)
        timings: dict[str, list[float]] = {"small": [], "big": []}
        for n in range(args.calls):
            for app in ("small", "big"):
                body = {"title": f"t{n}", "body": "b", "audience": {"apps": [app]}}
                started = time.perf_counter()
                response = client.post("/v1/alerts", json=body, headers=headers)
                timings[app].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 202, response.text
        result: dict[str, Any] = {
            f"{app}_{stat}": round(fn(values), 2)
            for app, values in timings.items()
            for stat, fn in (
                ("p50_ms", statistics.median),
                ("p99_ms", lambda v: percentile(v, 0.99)),
            )
        }
        result["audiences"] = {"small": args.small, "big": args.big}
        result["p99_ratio_big_over_small"] = round(result["big_p99_ms"] / result["small_p99_ms"], 2)
        print(f"POST /v1/alerts, {args.calls} calls per audience, workers stopped")
        print(
            f"  {args.small:>9,} devices: p50 {result['small_p50_ms']} ms, "
            f"p99 {result['small_p99_ms']} ms"
        )
        print(
            f"  {args.big:>9,} devices: p50 {result['big_p50_ms']} ms, "
            f"p99 {result['big_p99_ms']} ms"
        )
        print(f"  p99 ratio big/small: {result['p99_ratio_big_over_small']}")
        if args.json:
            print(json.dumps(result))
        return 0
    finally:
        stack.stop()
        asyncio.run(db.drop_schema(settings))


if __name__ == "__main__":
    raise SystemExit(main())
