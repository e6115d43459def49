"""The NDJSON export of an alert's per-device outcomes at scale: time and the API's peak RSS.

Starts a stack's API (its own schema and prefixes), triggers an alert, records `--devices`
outcomes for it straight into the durable record (rows of 500 as the senders write them,
`--invalid` of them invalid with a reason), then streams
`GET /v1/alerts/{id}/outcomes` with `Accept: application/x-ndjson`, reading the body as it
comes. Prints one JSON line: rows, seconds, MB, the API's peak RSS (VmHWM) before and after.

    python -m loadtest.outcome_export [--devices 1000000] [--invalid 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time

import httpx

from loadtest.stack import Stack, peak_rss_mb
from pushfan import db, outcome_record
from pushfan.outcome_reasons import reason_args
from pushfan.outcomes import Outcome
from pushfan.progress import outcome_args
from pushfan.settings import Settings

BATCH = 500


async def record(settings: Settings, alert_id: str, devices: int, invalid: float) -> float:
    """Write the outcomes as senders would, four connections at once; returns seconds."""
    started = time.monotonic()
    pool = await db.create_pool(settings, min_size=4, max_size=4)
    dead_per_batch = int(BATCH * invalid)

    async def one(n: int) -> None:
        ids = list(range(1 + n * BATCH, 1 + min(devices, (n + 1) * BATCH)))
        outcomes = {Outcome.DELIVERED: ids[dead_per_batch:], Outcome.INVALID: ids[:dead_per_batch]}
        sizes, packed = outcome_args(outcomes)
        reasons = reason_args(outcomes, dict.fromkeys(ids[:dead_per_batch], "Unregistered"))
        batch_id = f"{alert_id}:{n // 100}:fcm:demo:{n}"
        await outcome_record.write_outcomes(
            pool, alert_id, batch_id, 0, sizes, packed, reasons=reasons
        )

    try:
        batches = -(-devices // BATCH)
        for start in range(0, batches, 64):
            await asyncio.gather(*(one(n) for n in range(start, min(batches, start + 64))))
    finally:
        await pool.close()
    return time.monotonic() - started


def export(stack: Stack, key: str, alert_id: str, pid: int) -> dict[str, float]:
    headers = {"authorization": f"Bearer {key}", "accept": "application/x-ndjson"}
    lines = size = 0
    with httpx.Client(base_url=stack.api_url, timeout=600) as http:
        before = peak_rss_mb(pid) or 0.0
        started = time.monotonic()
        with http.stream("GET", f"/v1/alerts/{alert_id}/outcomes", headers=headers) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
                size += len(chunk)
        seconds = time.monotonic() - started
    return {
        "rows": lines,
        "seconds": round(seconds, 2),
        "rows_per_s": round(lines / seconds),
        "mb": round(size / 1e6, 1),
        "api_peak_rss_mb_before": round(before, 1),
        "api_peak_rss_mb_after": round(peak_rss_mb(pid) or 0.0, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--invalid", type=float, default=0.1)
    args = parser.parse_args()
    stack = Stack.create(f"export_{secrets.token_hex(3)}")
    try:
        key = stack.prepare(0, scopes=("alerts:send",))
        api = stack.spawn("api", ["api"])
        stack.wait_for_http(api, f"{stack.api_url}/healthz")
        created = httpx.post(
            f"{stack.api_url}/v1/alerts",
            json={"title": "export", "body": "b"},
            headers={"authorization": f"Bearer {key}"},
        )
        created.raise_for_status()
        alert_id = str(created.json()["id"])
        wrote = asyncio.run(record(stack.settings, alert_id, args.devices, args.invalid))
        result = {"devices": args.devices, "record_s": round(wrote, 1)}
        result.update(export(stack, key, alert_id, api.process.pid))
        print(json.dumps(result))
        return 0 if result["rows"] == args.devices else 1
    finally:
        stack.stop()
        stack.cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
