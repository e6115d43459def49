"""Watch a running pushfan stack second by second: where a fan-out's time goes over its run.

    python -m loadtest.pipeline_monitor --prefix pushfan_bench_pushfan_1234 --out run.jsonl

Attach it to a stack (a `pushfan bench` run: its prefix is `pushfan_bench_pushfan_<pid>`);
every `--interval` seconds it writes one JSON line: the CPU each process kind used in the
interval (the stack's expander, senders and API, found by their PUSHFAN_QUEUE_PREFIX, and the
shared PostgreSQL, RabbitMQ and Redis, which other work on the machine shares), the ready
messages of the expand and send queues, the pushes the ledger counted delivered in the
interval (they are counted as each batch ends), the dirty page cache, and the round trips of
a Redis PING and of a PostgreSQL commit that waits for the WAL flush. It stops when the
stack's senders have exited. `--summary FILE` prints a finished JSONL as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from loadtest.stack import SERVICE_PROCESSES, cpu_seconds
from pushfan.provider import Provider
from pushfan.settings import Settings
from pushfan.topology import QueueNames


def stack_processes(prefix: str) -> dict[str, list[int]]:
    """The stack's worker processes by kind (expander, sender-apns, sender-fcm, api)."""
    kinds: dict[str, list[int]] = {}
    marker = f"PUSHFAN_QUEUE_PREFIX={prefix}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker not in environ.split(b"\0"):
            continue
        words = [a.decode(errors="replace") for a in argv]
        if "expander" in words:
            kind = "expander"
        elif "sender" in words and "--provider" in words:
            kind = f"sender-{words[words.index('--provider') + 1]}"
        elif "api" in words or "uvicorn" in " ".join(words):
            kind = "api"
        else:
            continue
        kinds.setdefault(kind, []).append(int(entry.name))
    return kinds


async def _depths(channel: Any, names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for name in names:
        try:
            queue = await channel.declare_queue(name, passive=True)
            found[name.rsplit(".", 1)[-1]] = int(queue.declaration_result.message_count or 0)
        except Exception:
            found[name.rsplit(".", 1)[-1]] = -1
    return found


def _dirty_mb() -> float:
    """Dirty and under-writeback page cache, MB: what the kernel still has to write out."""
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[k].split()[0]) for k in ("Dirty", "Writeback")) / 1024


async def _probes(settings: Settings, redis: Any, db: Any) -> dict[str, float]:
    """Round trips, ms: a Redis PING, and a PostgreSQL commit that flushes the WAL
    (`txid_current()` takes a transaction id, so its commit waits for the fsync, like the
    record of outcomes' synchronous commit)."""
    started = time.perf_counter()
    await redis.ping()
    ping = time.perf_counter() - started
    started = time.perf_counter()
    await db.execute("SELECT txid_current()")
    commit = time.perf_counter() - started
    return {"redis_ms": round(ping * 1000, 2), "commit_ms": round(commit * 1000, 2)}


async def _delivered(redis: Any, prefix: str, found: list[bytes]) -> int:
    """Pushes the ledger counted delivered so far, over the stack's alerts (their keys are
    looked up once, into `found`, then read by name)."""
    if not found:
        async for key in redis.scan_iter(match=f"{prefix}:alert:*", count=10_000):
            if key.count(b":") == prefix.count(":") + 2:  # the alert's hash, not sub-keys
                found.append(key)
    return sum([int(await redis.hget(key, "delivered") or 0) for key in found])


async def watch(prefix: str, out: Path, interval: float, wait_s: float) -> None:
    import aio_pika
    import asyncpg
    import redis.asyncio as aioredis

    settings = Settings(queue_prefix=prefix)
    queues = QueueNames.for_prefix(prefix)
    names = [queues.expand, queues.send[Provider.APNS], queues.send[Provider.FCM]]
    deadline = time.monotonic() + wait_s
    kinds = stack_processes(prefix)
    while not any(k.startswith("sender") for k in kinds) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        kinds = stack_processes(prefix)
    kinds.update({k: get() for k, get in SERVICE_PROCESSES.items()})
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    db = await asyncpg.connect(settings.database_url.get_secret_value())
    last = {k: sum(cpu_seconds(p) or 0.0 for p in pids) for k, pids in kinds.items()}
    t0 = sampled = time.time()
    alerts: list[bytes] = []
    delivered = await _delivered(redis, prefix, alerts)
    with out.open("w") as sink:
        while True:
            await asyncio.sleep(interval)
            channel = await connection.channel()
            depths = await _depths(channel, names)
            await channel.close()
            now = {k: sum(cpu_seconds(p) or 0.0 for p in pids) for k, pids in kinds.items()}
            total = await _delivered(redis, prefix, alerts)
            at = time.time()
            span = max(1e-3, at - sampled)  # the interval as it was, sampling included
            row = {
                "t": round(at - t0, 2),
                "pushes_per_s": round((total - delivered) / span),
                "cpu": {k: round((now[k] - last[k]) / span, 3) for k in now},
                "ready": depths,
                "dirty_mb": round(_dirty_mb(), 1),
                **await _probes(settings, redis, db),
            }
            last, delivered, sampled = now, total, at
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            workers = [p for k, ps in kinds.items() if k.startswith("sender") for p in ps]
            if not any(cpu_seconds(p) is not None for p in workers):
                break
    await connection.close()
    await redis.aclose()
    await db.close()


def summary(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return "no samples"
    kinds = sorted({k for r in rows for k in r["cpu"]})
    queues = sorted({q for r in rows for q in r["ready"]})
    head = f"{'t s':>6} {'push/s':>7} " + " ".join(f"{k[:10]:>10}" for k in kinds)
    head += "  " + " ".join(f"{q[:6]:>6}" for q in queues)
    head += f" {'dirty':>6} {'redis':>6} {'commit':>7}"
    lines = [head + "   (CPU cores; ready messages; dirty MB; round trips ms)"]
    for r in rows:
        cells = " ".join(f"{r['cpu'].get(k, 0):>10.2f}" for k in kinds)
        depth = " ".join(f"{r['ready'].get(q, 0):>6}" for q in queues)
        probes = f" {r.get('dirty_mb', 0):>6.1f} {r.get('redis_ms', 0):>6.2f}"
        probes += f" {r.get('commit_ms', 0):>7.2f}"
        lines.append(f"{r['t']:>6.1f} {r.get('pushes_per_s', 0):>7} {cells}  {depth}{probes}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", help="the stack's queue prefix")
    parser.add_argument("--out", type=Path, default=Path("artifacts/pipeline.jsonl"))
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for senders")
    parser.add_argument("--summary", type=Path, help="print the table of a finished JSONL")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(watch(args.prefix, args.out, args.interval, args.wait))


if __name__ == "__main__":
    main()
