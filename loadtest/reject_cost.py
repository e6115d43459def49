"""What a refused request costs the API: CPU per request for hostile bodies (issue 12).

Runs the API in this process (its lifespan against the local services, on a throwaway
schema) and posts each hostile body through httpx's ASGI transport, so the CPU time of this
process around a request bounds the API's cost from above (the client's share is building
a request from bytes already in memory). Prints one row per case: the status and the median
and worst CPU milliseconds of --repeat requests.

    python -m loadtest.reject_cost [--repeat 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from collections.abc import AsyncIterator

import httpx

from pushfan import apikeys, db
from pushfan.api.app import create_app
from pushfan.settings import AppConfig, Settings

MIB = 1_048_576


def empty_arrays(size: int) -> bytes:
    return b"[" + b",".join([b"[]"] * ((size - 2) // 3 + 1)) + b"]"


async def chunks(total: int) -> AsyncIterator[bytes]:
    for start in range(0, total, 65_536):
        yield b" " * min(65_536, total - start)


def cases() -> list[tuple[str, str, bytes, bool]]:
    """(name, path, body, with a key)."""
    arrays = empty_arrays(MIB)
    near_bound = b",".join([b"{}"] * 20_000)
    return [
        ("1 MiB of [] -> devices", "/v1/devices", arrays, True),
        ("1 MiB of [] -> alerts", "/v1/alerts", arrays, True),
        ("1 MiB of [] -> notifications", "/v1/notifications", arrays, True),
        ("1 MiB of [], no key", "/v1/devices", arrays, False),
        (
            "20,000 bad token objects",
            "/v1/notifications",
            b'{"title":"t","body":"b","to":{"tokens":[' + near_bound + b"]}}",
            True,
        ),
        (
            "60,000 bad device ids",
            "/v1/notifications",
            b'{"title":"t","body":"b","to":{"device_ids":[' + b",".join([b'"x"'] * 60_000) + b"]}}",
            True,
        ),
        ("1 MiB title", "/v1/alerts", b'{"title":"' + b"t" * (MIB - 40) + b'","body":"b"}', True),
        ("NUL in title", "/v1/alerts", b'{"title":"a\\u0000","body":"b"}', True),
    ]


async def measure(repeat: int) -> list[dict[str, object]]:
    name = f"reject_{secrets.token_hex(3)}"
    settings = Settings(
        database_schema=name,
        queue_prefix=name,
        redis_prefix=f"{name}:",
        queue_type="classic",
        trigger_rate_per_s=0,  # limits are policy, not the cost measured here
        write_rate_per_s=0,
        address_rate_per_s=0,
        apps=[AppConfig(name="alpha")],
    )
    await db.migrate(settings)
    rows: list[dict[str, object]] = []
    try:
        conn = await db.connect(settings)
        try:
            _, key = await apikeys.create(conn, "reject-cost", ["admin"])
        finally:
            await conn.close()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                for label, path, body, keyed in cases():
                    headers = {"content-type": "application/json"}
                    if keyed:
                        headers["authorization"] = f"Bearer {key}"
                    costs, status = [], 0
                    for _ in range(repeat):
                        started = time.process_time()
                        response = await client.post(path, content=body, headers=headers)
                        costs.append((time.process_time() - started) * 1000)
                        status = response.status_code
                    rows.append(
                        {
                            "case": label,
                            "bytes": len(body),
                            "status": status,
                            "cpu_ms_median": round(statistics.median(costs), 2),
                            "cpu_ms_max": round(max(costs), 2),
                        }
                    )
                costs = []
                for _ in range(repeat):
                    started = time.process_time()
                    response = await client.post(
                        "/v1/alerts",
                        content=chunks(MIB + 1),
                        headers={"authorization": f"Bearer {key}"},
                    )
                    costs.append((time.process_time() - started) * 1000)
                rows.append(
                    {
                        "case": "chunked 1 MiB + 1 byte",
                        "bytes": MIB + 1,
                        "status": response.status_code,
                        "cpu_ms_median": round(statistics.median(costs), 2),
                        "cpu_ms_max": round(max(costs), 2),
                    }
                )
    finally:
        await db.drop_schema(settings)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = asyncio.run(measure(args.repeat))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'case':34} {'bytes':>9} {'status':>6} {'CPU ms p50':>10} {'max':>7}")
    for r in rows:
        print(
            f"{r['case']:34} {r['bytes']:>9} {r['status']:>6} "
            f"{r['cpu_ms_median']:>10} {r['cpu_ms_max']:>7}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
