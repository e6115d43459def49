"""`make loadtest`: Locust, headless, against a whole local stack, with an SLO gate.

Starts both provider simulators, the API and the workers as real processes (cli.stack), in
a fresh schema / queue prefix / Redis prefix; seeds devices (a handful carry the tag the
alerts target, so alert audiences stay small); creates one API key with the scopes the users
need; runs `python -m locust` (gevent: a child process, never imported here) for --duration;
writes CSV and HTML into --out; prints requests/s, p50/p95/p99 and the error ratio per
endpoint; and exits 1 when any endpoint (or the total) has an error ratio over
--max-error-ratio or a p95 over --p95-ms.

Everything shares this machine's cores: Locust, the API, the workers, the simulators,
PostgreSQL, Redis and RabbitMQ. The p95 gate is measured end to end from Locust's clock, so
it includes the time a request waits for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aio_pika
import redis

from loadtest.stack import SERVICE_PROCESSES, CpuMeter, Stack
from pushfan import apikeys, db, topology
from pushfan.seed import seed_devices
from pushfan.settings import Settings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
ROOT = LOCUSTFILE.parent.parent
SCOPES = ["alerts:send", "notifications:send", "devices:write"]


@dataclass
class EndpointStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    p.add_argument("--users", type=int, default=100, help="concurrent Locust users")
    p.add_argument("--spawn-rate", type=float, default=50, help="users started per second")
    p.add_argument("--user-rate", type=float, default=12, help="requests/s each user aims at")
    p.add_argument("--p95-ms", type=float, default=50, help="gate: p95 of every endpoint")
    p.add_argument("--max-error-ratio", type=float, default=0.001, help="gate (0.001 = 0.1%%)")
    p.add_argument("--devices", type=int, default=10_000, help="devices seeded before the run")
    p.add_argument("--few", type=int, default=5, help="devices carrying the alerts' tag")
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "loadtest")
    p.add_argument(
        "--tags",
        nargs="+",
        choices=["devices", "status", "notifications", "alerts"],
        help="only these kinds of request (default: the whole mix)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=120,
        help="seconds to wait, after the load, for the workers to finish every alert",
    )
    p.add_argument(
        "--goal-rps",
        type=float,
        default=1000,
        help="the CPU report shows the cores each part would need at this rate",
    )
    p.add_argument("--json", action="store_true", help="last line: the results as JSON")
    return p.parse_args(argv)


async def prepare_load(
    settings: Settings, devices: int, few: int, tag: str
) -> tuple[str, int, int]:
    """Fresh schema, seeded devices (`few` of them tagged), a key; returns key and id range."""
    await db.migrate(settings)
    conn = await db.connect(settings)
    try:
        await seed_devices(conn, devices, apps=["demo"])
        lo, hi = await conn.fetchrow("SELECT min(id), max(id) FROM devices")
        await conn.execute(
            "UPDATE devices SET tags = tags || $1::text[] WHERE id < $2", [tag], lo + few
        )
        _, key = await apikeys.create(conn, "loadtest", SCOPES)
    finally:
        await conn.close()
    return key, int(lo), int(hi)


async def cleanup(settings: Settings) -> None:
    await db.drop_schema(settings)
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        await topology.delete_all(await connection.channel(), settings)
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    for key in client.scan_iter(f"{settings.redis_prefix}*", count=1000):
        client.delete(key)
    client.close()


def read_stats(stats_csv: Path) -> list[EndpointStats]:
    rows = []
    with stats_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["Name"] if row["Type"] == "" else f"{row['Type']} {row['Name']}"
            rows.append(
                EndpointStats(
                    name=name,
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    rps=float(row["Requests/s"]),
                    p50_ms=_ms(row["50%"]),
                    p95_ms=_ms(row["95%"]),
                    p99_ms=_ms(row["99%"]),
                )
            )
    return rows


def _ms(value: str) -> float:
    return float(value) if value not in ("", "N/A") else 0.0


def gate(stats: list[EndpointStats], p95_ms: float, max_error_ratio: float) -> list[str]:
    """What breaks the SLO; empty when the run passes."""
    if not any(s.requests for s in stats):
        return ["no requests were made"]
    problems = []
    for s in stats:
        if s.error_ratio > max_error_ratio:
            problems.append(f"{s.name}: error ratio {s.error_ratio:.3%} > {max_error_ratio:.3%}")
        if s.requests and s.p95_ms > p95_ms:
            problems.append(f"{s.name}: p95 {s.p95_ms:.0f} ms > {p95_ms:.0f} ms")
    return problems


def print_table(stats: list[EndpointStats]) -> None:
    print(f"{'endpoint':<34}{'requests':>9}{'req/s':>9}{'p50':>7}{'p95':>7}{'p99':>7}{'errors':>9}")
    for s in stats:
        print(
            f"{s.name:<34}{s.requests:>9}{s.rps:>9.1f}{s.p50_ms:>7.0f}{s.p95_ms:>7.0f}"
            f"{s.p99_ms:>7.0f}{s.error_ratio:>9.3%}"
        )
    print("(latencies in ms, measured by Locust)")


@dataclass
class Backlog:
    alerts: int  # alerts and notifications the run triggered
    unfinished: int  # of them, not finished when the wait ended
    waited_s: float  # after the load stopped, until all were finished (or the timeout)


async def wait_for_backlog(settings: Settings, timeout_s: float) -> Backlog:
    """Wait until every alert the run triggered is finished: a rate the API accepts but the
    workers cannot follow is no rate at all, and this shows it."""
    pool = await db.create_pool(settings, min_size=1, max_size=1)
    started = time.monotonic()
    try:
        while True:
            total, unfinished = await pool.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE finished_at IS NULL) FROM alerts"
            )
            waited = time.monotonic() - started
            if not unfinished or waited >= timeout_s:
                return Backlog(int(total), int(unfinished), round(waited, 1))
            await asyncio.sleep(0.5)
    finally:
        await pool.close()


def print_backlog(backlog: Backlog) -> None:
    if backlog.unfinished:
        print(
            f"backlog: {backlog.unfinished} of {backlog.alerts} alerts still unfinished "
            f"{backlog.waited_s:.0f} s after the load stopped"
        )
    else:
        print(
            f"backlog: all {backlog.alerts} alerts finished {backlog.waited_s:.1f} s after "
            "the load stopped"
        )


def busy_seconds() -> float:
    """CPU seconds this machine spent busy (all processes, all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_report(meter: CpuMeter, locust_s: float, machine_s: float, wall_s: float) -> dict[str, Any]:
    """CPU seconds per process of this run and of the services it used, and what the rest of
    the machine (the kernel's own work, other users) used meanwhile."""
    used = {**meter.cpu, "locust": locust_s}
    return {
        "wall_s": wall_s,
        "cores": os.cpu_count() or 1,
        "processes": used,
        "machine_busy_s": machine_s,
        "elsewhere_s": machine_s - sum(used.values()),
    }


def print_cpu(cpu: dict[str, Any], stats: list[EndpointStats], goal_rps: float) -> None:
    """Where the CPU went, per request of the mix, and what the goal's rate would need."""
    total = next((s.requests for s in stats if s.name == "Aggregated"), 0)
    if not total:
        return
    capacity = cpu["wall_s"] * cpu["cores"]
    print(
        f"CPU over {cpu['wall_s']:.0f} s x {cpu['cores']} cores, machine busy "
        f"{cpu['machine_busy_s'] / capacity:.0%}; per request of the mix:"
    )
    rows = sorted(cpu["processes"].items(), key=lambda kv: -kv[1])
    rows.append(("elsewhere (kernel, others)", cpu["elsewhere_s"]))
    rows.append(("machine", cpu["machine_busy_s"]))
    for name, seconds in rows:
        per_request_ms = 1000 * seconds / total
        print(
            f"  {name:<28}{seconds:>7.1f} s {per_request_ms:>7.3f} ms/request"
            f"{per_request_ms * goal_rps / 1000:>7.2f} cores at {goal_rps:g} req/s"
        )


def run_locust(args: argparse.Namespace, stack: Stack, env: dict[str, str], prefix: Path) -> int:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        stack.api_url,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{max(1, round(args.duration))}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        *(["--tags", *args.tags] if args.tags else []),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    log_path = prefix.with_suffix(".log")
    with log_path.open("wb") as log:
        # Locust exits 1 when any request failed; the gate below judges the run instead.
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = f"lt_{secrets.token_hex(3)}"
    tag = "loadtest-few"
    # The per-key and per-address limits are policy, not capacity: raised so the one key
    # and the one address of the run are never refused, while each write still pays for the
    # limiters' Redis calls.
    unlimited = "1000000"
    stack = Stack.create(
        name,
        extra_env={
            "PUSHFAN_TRIGGER_RATE_PER_S": unlimited,
            "PUSHFAN_TRIGGER_BURST": unlimited,
            "PUSHFAN_WRITE_RATE_PER_S": unlimited,
            "PUSHFAN_WRITE_BURST": unlimited,
            "PUSHFAN_ADDRESS_RATE_PER_S": unlimited,
            "PUSHFAN_ADDRESS_BURST": unlimited,
        },
    )
    settings = Settings(database_schema=name, queue_prefix=name, redis_prefix=f"{name}:")
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / time.strftime("locust-%Y%m%d-%H%M%S")
    try:
        print(f"loadtest: seeding {args.devices:,} devices, starting the stack ({name})")
        key, lo, hi = asyncio.run(prepare_load(settings, args.devices, args.few, tag))
        stack.start_simulators()
        stack.start_api()
        stack.start_workers()
        env = {
            **stack.env,
            "LOADTEST_API_KEY": key,
            "LOADTEST_APP": stack.apps[0],
            "LOADTEST_FEW_TAG": tag,
            "LOADTEST_DEVICE_IDS": f"{lo}-{hi}",
            "LOADTEST_USER_RATE": str(args.user_rate),
        }
        print(
            f"loadtest: {args.users} users x {args.user_rate:g} req/s for {args.duration:g} s "
            f"against {stack.api_url}"
        )
        meter = CpuMeter(
            {c.name: [c.process.pid] for c in stack.children}
            | {name: pids() for name, pids in SERVICE_PROCESSES.items()}
        )
        meter.start()
        machine_before = busy_seconds()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        code = run_locust(args, stack, env, prefix)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        meter.stop()
        locust_s = sum(
            getattr(children, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime")
        )
        cpu = cpu_report(
            meter, locust_s, busy_seconds() - machine_before, time.monotonic() - started
        )
        dead = [c.name for c in stack.children if not c.alive()]
        backlog = asyncio.run(wait_for_backlog(settings, args.drain_timeout))
    finally:
        stack.stop()
        asyncio.run(cleanup(settings))
    stats_csv = Path(f"{prefix}_stats.csv")
    if code not in (0, 1) or not stats_csv.exists():
        print(f"loadtest: locust failed (exit {code}); see {prefix.with_suffix('.log')}")
        return 2
    stats = read_stats(stats_csv)
    print_table(stats)
    print_cpu(cpu, stats, args.goal_rps)
    print_backlog(backlog)
    print(f"report: {prefix}.html, CSV: {prefix}_*.csv")
    problems = gate(stats, args.p95_ms, args.max_error_ratio)
    problems += [f"{d} exited during the run" for d in dead]
    if backlog.unfinished:
        problems.append(
            f"{backlog.unfinished} of {backlog.alerts} alerts unfinished "
            f"{backlog.waited_s:.0f} s after the load stopped"
        )
    for problem in problems:
        print(f"SLO FAILED  {problem}")
    if not problems:
        print(
            f"SLO passed: every endpoint p95 <= {args.p95_ms:g} ms, errors <= "
            f"{args.max_error_ratio:.2%}"
        )
    if args.json:
        results = [{**asdict(s), "error_ratio": s.error_ratio} for s in stats]
        summary = {
            "passed": not problems,
            "problems": problems,
            "endpoints": results,
            "cpu": cpu,
            "backlog": asdict(backlog),
        }
        print(json.dumps(summary))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
