"""Receipts under load: Locust posts `POST /v1/receipts` against one API process of a fresh
stack (its own schema and prefixes; no workers: receipts touch PostgreSQL and Redis only).

Seeds `--devices` devices, triggers one alert, makes the app's publishable key, runs
`loadtest/locust_receipts.py` headless for `--duration` s with `--users` users at
`--user-rate` requests/s each (the per-address limit is off: every phone here shares one
address), then prints one JSON line: receipts/s answered, p50/p95/p99, failures, and the
rows recorded (replays count once).

    python -m loadtest.receipts_load [--users 40] [--user-rate 50] [--duration 30]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from loadtest.stack import Stack
from pushfan import apikeys, db

LOCUSTFILE = Path(__file__).with_name("locust_receipts.py")


async def publishable(stack: Stack) -> tuple[str, int]:
    pool = await db.create_pool(stack.settings, min_size=1, max_size=1)
    try:
        _, key = await apikeys.create(pool, "phones", ["receipts:write"], apps=["demo"])
        return key, int(await pool.fetchval("SELECT max(id) FROM devices"))
    finally:
        await pool.close()


async def recorded(stack: Stack) -> int:
    pool = await db.create_pool(stack.settings, min_size=1, max_size=1)
    try:
        return int(await pool.fetchval("SELECT count(*) FROM receipts"))
    finally:
        await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--user-rate", type=float, default=50)
    parser.add_argument("--duration", type=int, default=30)
    args = parser.parse_args()
    stack = Stack.create(
        f"receipts_{secrets.token_hex(3)}", extra_env={"PUSHFAN_ADDRESS_RATE_PER_S": "0"}
    )
    try:
        server_key = stack.prepare(args.devices, scopes=("alerts:send",))
        api = stack.spawn("api", ["api"])
        stack.wait_for_http(api, f"{stack.api_url}/healthz")
        alert = httpx.post(
            f"{stack.api_url}/v1/alerts",
            json={"title": "t", "body": "b"},
            headers={"authorization": f"Bearer {server_key}"},
        )
        alert.raise_for_status()
        key, top = asyncio.run(publishable(stack))
        out = stack.workdir / "locust"
        env = {
            **stack.env,
            "LOADTEST_API_KEY": key,
            "LOADTEST_ALERT_ID": str(alert.json()["id"]),
            "LOADTEST_DEVICE_IDS": f"1-{top}",
            "LOADTEST_USER_RATE": str(args.user_rate),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.users),
                "-t",
                f"{args.duration}s",
                "--host",
                stack.api_url,
                "--csv",
                str(out),
                "--only-summary",
            ],
            env=env,
            check=False,
            capture_output=True,
        )
        with open(f"{out}_stats.csv") as f:
            total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
        result = {
            "users": args.users,
            "receipts_per_s": round(float(total["Requests/s"])),
            "requests": int(total["Request Count"]),
            "failures": int(total["Failure Count"]),
            "p50_ms": float(total["50%"]),
            "p95_ms": float(total["95%"]),
            "p99_ms": float(total["99%"]),
            "rows_recorded": asyncio.run(recorded(stack)),
        }
        print(json.dumps(result))
        return 0
    finally:
        stack.stop()
        stack.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
