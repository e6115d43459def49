"""`pushfan bench`: end-to-end pushes/s on this box, against the baselines, in one run.

Variants, each on its own schema, queue prefix and Redis prefix, with both simulators (TLS,
their own CA, as users run them) as real processes:
- `pushfan`: the pipeline (API → expander → senders) with the fast providers, at --devices;
- `original`: the same pipeline with PUSHFAN_HTTP_CLIENT=original (aioapns + httpx);
- `seed`: the seed's design, one RabbitMQ message per push (loadtest/seed_design.py).
The baselines use --baseline-devices (default 100,000) since they are slower; rates
are per second, so they compare. Measured per variant: pushes/s (first to last push the
simulators accepted), time to first push and p50/p99 trigger→simulator latency (from the
simulators' per-second counts), trigger latency, CPU µs per push and peak RSS per process
kind (/proc), duplicates and lost pushes, and the steadiness of the rate (10th percentile /
median of the per-second rate). A PNG of pushes/s over time goes to artifacts/.
`--compare REV` runs this checkout and REV alternately instead (loadtest/compare.py).
With --web-fraction F the pushfan variant's audience includes browsers (Web Push, decrypted by
its simulator), and the senders' CPU is also reported per provider: each provider's sender
CPU over the pushes its simulator accepted (`sender_cpu_us_per_push_by_provider`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from loadtest.demo import clean_redis, follow_alert, prepare_demo, say
from loadtest.services import ensure_services
from loadtest.stack import SERVICE_PROCESSES, Child, CpuMeter, Stack, cpu_seconds
from pushfan import db
from pushfan.api import examples
from pushfan.provider import Provider
from pushfan.settings import Settings

ARTIFACTS = Path("artifacts")
ALERT = {
    "title": "Global alert",
    "body": "pushfan bench: this is a test of the mass notification system.",
    "data": {"kind": "bench"},
    "ttl": 3600,
    "priority": "high",
}


def _latencies(per_second: list[list[int]], t0: float) -> tuple[float | None, float | None]:
    """p50 and p99 of (accepted at - trigger) from per-second counts (1 s resolution,
    each push placed mid-second)."""
    total = sum(count for _, count in per_second)
    if not total:
        return None, None
    marks: dict[str, float] = {}
    running = 0
    for second, count in sorted(per_second):
        running += count
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            if name not in marks and running >= q * total:
                marks[name] = (second + 0.5 - t0) * 1000
    return marks.get("p50"), marks.get("p99")


def _sims(stack: Stack, alert_id: str) -> dict[str, Any]:
    by_provider = {p: stack.sim_stats(p, alert_id) for p in stack.simulators}
    sims = list(by_provider.values())
    per_second: dict[int, int] = {}
    for stats in sims:
        for second, count in stats["per_second"]:
            per_second[second] = per_second.get(second, 0) + count
    firsts = [s["first_accepted_at"] for s in sims if s.get("first_accepted_at")]
    lasts = [s["last_accepted_at"] for s in sims if s.get("last_accepted_at")]
    return {
        "accepted": sum(int(s["accepted"]) for s in sims),
        "accepted_by_provider": {p: int(s["accepted"]) for p, s in by_provider.items()},
        "duplicates": sum(int(s["duplicates"]) for s in sims),
        "first": min(firsts) if firsts else None,
        "last": max(lasts) if lasts else None,
        "per_second": sorted([s, c] for s, c in per_second.items()),
    }


def _spawn_module(stack: Stack, name: str, args: list[str], env: dict[str, str]) -> Child:
    log_path = stack.workdir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        env={**stack.env, **env},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child(name, process, log_path)
    stack.children.append(child)
    return child


def alert_body(message: str) -> dict[str, Any]:
    """The bench's alert, or one of the OpenAPI examples of a message kind."""
    if message == "plain":
        return ALERT
    return {**examples.MESSAGES[message], "ttl": 3600}


def run_variant(
    variant: str,
    devices: int,
    dead_fraction: float,
    web_fraction: float = 0.0,
    message: str = "plain",
) -> dict[str, Any]:
    name = f"pushfan_bench_{variant}_{os.getpid()}"  # concurrent runs never share a stack
    client = "original" if variant == "original" else "fast"
    web = web_fraction > 0
    stack = Stack.create(name, extra_env={"PUSHFAN_HTTP_CLIENT": client}, web=web)
    settings = Settings(database_schema=name, queue_prefix=name, redis_prefix=f"{name}:")
    try:
        say(f"[{variant}] seeding {devices:,} devices")
        clean_redis(settings)
        make = stack.web_subscription() if web else None
        key = asyncio.run(prepare_demo(settings, devices, 0.5, stack.apps, web_fraction, make))
        stack.start_simulators(dead_fraction=dead_fraction)
        sims = [c for c in stack.children if c.name.startswith("sim-")]
        if variant == "seed":
            return _run_seed(stack, settings, devices, sims)
        api = stack.start_api()
        workers = stack.start_workers(1)
        kinds = {
            "api": [api.process.pid],
            "expander": [w.process.pid for w in workers if w.name == "expander"],
            "sender": [w.process.pid for w in workers if w.name.startswith("sender")],
            **{
                f"sender-{p}": [w.process.pid for w in workers if w.name.startswith(f"sender-{p}")]
                for p in stack.providers
            },
            "simulator": [s.process.pid for s in sims],
            "broker": SERVICE_PROCESSES["broker"](),
            "redis": SERVICE_PROCESSES["redis"](),
        }
        meter = CpuMeter(kinds)
        headers = {"authorization": f"Bearer {key}", "idempotency-key": f"bench-{time.time_ns()}"}
        http = httpx.Client(base_url=stack.api_url, timeout=30)
        meter.start()
        triggered = time.time()
        started = time.monotonic()
        response = http.post("/v1/alerts", json=alert_body(message), headers=headers)
        trigger_ms = (time.monotonic() - started) * 1000
        response.raise_for_status()
        alert_id = response.json()["id"]
        state = follow_alert(http, stack, alert_id, headers, devices, started)
        meter.stop()
        counts = state["counts"]
        return _summary(
            variant, devices, triggered, trigger_ms, _sims(stack, alert_id), meter, counts
        )
    finally:
        stack.stop()
        asyncio.run(_drop(settings))


def _run_seed(stack: Stack, settings: Settings, devices: int, sims: list[Child]) -> dict[str, Any]:
    import uuid

    alert_id = str(uuid.uuid4())
    consumers = [
        _spawn_module(
            stack,
            f"seed-consume-{p}",
            ["loadtest.seed_design", "consume", "--provider", p, "--alert-id", alert_id],
            {},
        )
        for p in Provider
    ]
    for child in consumers:
        stack.wait_for_log(child, "consuming")
    meter = CpuMeter(
        {
            "sender": [c.process.pid for c in consumers],
            "simulator": [s.process.pid for s in sims],
            "broker": SERVICE_PROCESSES["broker"](),
        }
    )
    meter.start()
    triggered = time.time()
    publisher = _spawn_module(
        stack, "seed-publish", ["loadtest.seed_design", "publish", "--alert-id", alert_id], {}
    )
    meter.kinds["expander"] = [publisher.process.pid]  # the publisher plays the expander
    meter._start["expander"] = 0.0
    deadline = time.monotonic() + 60 + devices / 200
    publisher_total = 0.0
    accepted, changed = -1, time.monotonic()
    # Finished: the publisher exited and the simulators accepted nothing new for 2 s.
    while time.monotonic() < deadline:
        publisher_total = cpu_seconds(publisher.process.pid) or publisher_total
        now = _sims(stack, alert_id)["accepted"]
        if now != accepted:
            accepted, changed = now, time.monotonic()
        elif publisher.process.poll() is not None and time.monotonic() - changed > 2:
            break
        time.sleep(0.5)
    meter.kinds.pop("expander")
    meter.stop()
    meter.cpu["expander"] = publisher_total
    meter.rss["expander"] = 0.0
    return _summary("seed", devices, triggered, None, _sims(stack, alert_id), meter, None)


def _summary(
    variant: str,
    devices: int,
    triggered: float,
    trigger_ms: float | None,
    sim: dict[str, Any],
    meter: CpuMeter,
    counts: dict[str, Any] | None,
) -> dict[str, Any]:
    first, last = sim["first"], sim["last"]
    span = (last - first) if first and last else 0.0
    p50, p99 = _latencies(sim["per_second"], triggered)
    finished = (
        counts["delivered"] + counts["invalid"] + counts["failed"] + counts.get("expired", 0)
        if counts
        else sim["accepted"]
    )
    delivered = counts["delivered"] if counts else sim["accepted"]
    pushes = max(1, sim["accepted"])
    per_provider = {
        p: round(meter.cpu[f"sender-{p}"] / n * 1e6, 1)
        for p, n in sim.get("accepted_by_provider", {}).items()
        if n and f"sender-{p}" in meter.cpu
    }
    return {
        "variant": variant,
        "devices": devices,
        "accepted": sim["accepted"],
        "pushes_per_s": round(sim["accepted"] / span, 1) if span else None,
        "first_push_ms": round((first - triggered) * 1000, 1) if first else None,
        "p50_ms": round(p50, 0) if p50 is not None else None,
        "p99_ms": round(p99, 0) if p99 is not None else None,
        "trigger_ms": round(trigger_ms, 1) if trigger_ms is not None else None,
        "duplicates": sim["duplicates"],
        # Lost: devices the ledger never finished (delivered, invalid, failed or expired).
        # The seed design keeps no ledger: its shortfall is the dead tokens, not losses.
        "lost": devices - finished if counts else None,
        "simulators_agree": sim["accepted"] == delivered,
        "cpu_us_per_push": {
            k: round(v / pushes * 1e6, 1)
            for k, v in meter.cpu.items()
            if not k.startswith("sender-")
        },
        "accepted_by_provider": sim.get("accepted_by_provider"),
        "sender_cpu_us_per_push_by_provider": per_provider,
        "peak_rss_mb": {k: round(v, 1) for k, v in meter.rss.items()},
        "per_second": [[s - int(triggered), c] for s, c in sim["per_second"]],
    }


async def _drop(settings: Settings) -> None:
    import aio_pika

    from pushfan import topology

    await db.drop_schema(settings)
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    try:
        names = topology.QueueNames.for_prefix(settings.queue_prefix).all()
        names += [f"{settings.queue_prefix}.seed.{p}" for p in Provider]
        for queue in names:
            channel = await connection.channel()
            try:
                await channel.queue_delete(queue)
            except Exception:  # not declared in this variant
                pass
    finally:
        await connection.close()


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in results:
        series = r["per_second"]
        ax.plot([s for s, _ in series], [c for _, c in series], label=_label(r))
    ax.set_xlabel("seconds since trigger")
    ax.set_ylabel("pushes/s accepted by the simulators")
    ax.set_title("pushfan bench: pushes per second")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def _label(r: dict[str, Any]) -> str:
    return f"{r['variant']} ({r['devices']:,} devices)"


def _table(results: list[dict[str, Any]]) -> str:
    kinds = ["api", "expander", "sender", "simulator", "broker", "redis"]
    head = f"{'variant':24} {'pushes/s':>9} {'first ms':>9} {'p50 ms':>8} {'p99 ms':>8} "
    head += f"{'trig ms':>8} {'dup':>4} {'lost':>5}  " + " ".join(f"{k[:6]:>7}" for k in kinds)
    lines = [head + "   (CPU µs/push)", "-" * len(head)]
    for r in results:
        cpu = r["cpu_us_per_push"]
        lines.append(
            f"{_label(r):24} {r['pushes_per_s'] or 0:>9,.0f} {r['first_push_ms'] or 0:>9,.0f} "
            f"{r['p50_ms'] or 0:>8,.0f} {r['p99_ms'] or 0:>8,.0f} {r['trigger_ms'] or 0:>8.1f} "
            f"{r['duplicates']:>4} {r['lost'] if r['lost'] is not None else '-':>5}  "
            + " ".join(f"{cpu.get(k, 0):>7.1f}" for k in kinds)
        )
    lines.append(
        "peak RSS MB: " + "; ".join(f"{r['variant']}: {r['peak_rss_mb']}" for r in results)
    )
    return "\n".join(lines)


def steadiness(per_second: list[list[int]], edge_s: int = 2) -> float | None:
    """10th percentile / median of the per-second rate in steady state (the first and last
    `edge_s` seconds, the ramps, left out): 1.0 is a flat line, a sawtooth is well below."""
    rates = sorted(count for _, count in per_second[edge_s : len(per_second) - edge_s])
    if len(rates) < 5:
        return None
    median = statistics.median(rates)
    return round(rates[len(rates) // 10] / median, 3) if median else None


def run_bench(args: argparse.Namespace) -> int:
    problems = ensure_services(log=say)
    if problems:
        for problem in problems:
            say(f"  ! {problem}")
        return 1
    if args.compare:
        from loadtest.compare import run_compare

        return run_compare(args)
    baseline = min(args.devices, args.baseline_devices)
    plan = [("pushfan", args.devices)]
    if not args.skip_baselines:
        plan += [("original", baseline), ("seed", baseline)]
    results = [
        run_variant(
            variant, n, args.dead_fraction, args.web_fraction if i == 0 else 0.0, args.message
        )
        for i, (variant, n) in enumerate(plan)
    ]
    main = results[0]
    by = {r["variant"]: r for r in results}
    rate = main["pushes_per_s"] or 0.0

    def ratio(other: str) -> float | None:
        base = by.get(other, {}).get("pushes_per_s")
        return round(rate / base, 2) if base else None

    png = ARTIFACTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.png"
    _plot(results, png)
    say("\n" + _table(results))
    by_provider = main["sender_cpu_us_per_push_by_provider"]
    if by_provider:
        say(
            "sender CPU µs per push by provider: "
            + ", ".join(f"{p} {v}" for p, v in by_provider.items())
            + f" (pushes: {main['accepted_by_provider']})"
        )
    if baseline < args.devices and not args.skip_baselines:
        say(f"baselines ran at {baseline:,} devices (rates compare; totals do not)")
    summary = {
        "devices": args.devices,
        "baseline_devices": baseline,
        "pushes_per_s": rate,
        "seed_design_pushes_per_s": by.get("seed", {}).get("pushes_per_s"),
        "original_clients_pushes_per_s": by.get("original", {}).get("pushes_per_s"),
        "vs_seed_design": ratio("seed"),
        "vs_original_clients": ratio("original"),
        "sender_cpu_us_per_push": main["cpu_us_per_push"].get("sender"),
        "steadiness": steadiness(main["per_second"]),
        "sender_cpu_us_per_push_by_provider": main["sender_cpu_us_per_push_by_provider"],
        "accepted_by_provider": main["accepted_by_provider"],
        "first_push_ms": main["first_push_ms"],
        "p50_ms": main["p50_ms"],
        "p99_ms": main["p99_ms"],
        "trigger_ms": main["trigger_ms"],
        "duplicates": main["duplicates"],
        "lost": main["lost"],
        "cpu_us_per_push": main["cpu_us_per_push"],
        "peak_rss_mb": main["peak_rss_mb"],
        "png": str(png),
        "variants": [{k: v for k, v in r.items() if k != "per_second"} for r in results],
    }
    say(
        f"ratios: {summary['vs_seed_design']}x seed design, "
        f"{summary['vs_original_clients']}x original clients; chart {png}"
    )
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0 if main["duplicates"] == 0 and main["lost"] == 0 else 1
