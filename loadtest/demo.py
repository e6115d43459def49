"""`pushfan demo`: one global alert to a seeded device population, end to end, on this box.

Checks the services, migrates a fresh `pushfan_demo` schema, seeds the devices (with
`--web-fraction F`, that share of them browsers subscribed to the Web Push simulator), starts
the provider simulators, the API and the workers as real processes, triggers a global alert
through the REST API, shows its progress and prints a summary (with --json, the last line is
one JSON object). It stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

import aio_pika
import httpx
import redis

from loadtest.services import ensure_services
from loadtest.stack import Stack, peak_rss_mb
from pushfan import apikeys, db, topology
from pushfan.seed import WebSubscriptionFn, print_progress, seed_devices
from pushfan.settings import Settings

DEMO_NAME = "pushfan_demo"
FINAL_OUTCOMES = ("delivered", "invalid", "failed", "expired", "cancelled")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def prepare_demo(
    settings: Settings,
    devices: int,
    ios_fraction: float,
    apps: list[str],
    web_fraction: float = 0.0,
    web_subscription: WebSubscriptionFn | None = None,
    sandbox_fraction: float = 0.0,
) -> str:
    """Fresh schema and queues, seeded devices, and an API key for the trigger; returns the
    key."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        await topology.delete_all(await connection.channel(), settings)
    await db.drop_schema(settings)
    await db.migrate(settings)
    conn = await db.connect(settings)
    try:
        started = time.monotonic()
        await seed_devices(
            conn,
            devices,
            ios_fraction=ios_fraction,
            apps=apps,
            progress=print_progress,
            web_fraction=web_fraction,
            web_subscription=web_subscription,
            sandbox_fraction=sandbox_fraction,
        )
        say(f"  seeded {devices:,} devices in {time.monotonic() - started:.1f}s")
        _key, plaintext = await apikeys.create(conn, "demo", ["alerts:send"])
    finally:
        await conn.close()
    return plaintext


def _bar(done: int, total: int, rate: float) -> str:
    width = 32
    filled = width * done // max(total, 1)
    return (
        f"\r  sending  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}  {rate:,.0f}/s"
    )


def clean_redis(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    for key in client.scan_iter(f"{settings.redis_prefix}*", count=1000):
        client.delete(key)
    client.close()


def run_demo(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    say("pushfan demo: checking services")
    problems = ensure_services(log=say)
    if problems:
        for problem in problems:
            say(f"  ! {problem}")
        return 1
    stack = Stack.create(DEMO_NAME, web=args.web_fraction > 0)
    # Children read these; this process builds the same settings to prepare the data.
    settings = Settings(
        database_schema=DEMO_NAME, queue_prefix=DEMO_NAME, redis_prefix=f"{DEMO_NAME}:"
    )
    try:
        return _run(stack, settings, args)
    finally:
        say("  stopping simulators, API and workers")
        stack.stop()


def _run(stack: Stack, settings: Settings, args: argparse.Namespace) -> int:
    say(f"  migrating schema {DEMO_NAME} and seeding {args.devices:,} devices")
    clean_redis(settings)
    web = stack.web_subscription() if args.web_fraction > 0 else None
    key = asyncio.run(
        prepare_demo(
            settings,
            args.devices,
            args.ios_fraction,
            stack.apps,
            args.web_fraction,
            web,
            args.sandbox_fraction,
        )
    )
    say(f"  starting the {', '.join(stack.simulators)} simulators, API and workers")
    stack.start_simulators(dead_fraction=args.dead_fraction)
    api = stack.start_api()
    workers = stack.start_workers(args.senders)
    headers = {"authorization": f"Bearer {key}", "idempotency-key": f"demo-{time.time_ns()}"}
    alert = {
        "title": "Global alert",
        "body": "pushfan demo: this is a test of the mass notification system.",
        "data": {"kind": "demo"},
        "ttl": 3600,
        "priority": "high",
    }
    client = httpx.Client(base_url=stack.api_url, timeout=30)
    triggered = time.time()
    started = time.monotonic()
    response = client.post("/v1/alerts", json=alert, headers=headers)
    trigger_ms = (time.monotonic() - started) * 1000
    if response.status_code != 202:
        say(f"  ! trigger answered {response.status_code}: {response.text}")
        return 1
    alert_id = response.json()["id"]
    say(f"  alert {alert_id} accepted in {trigger_ms:.1f} ms")
    state = follow_alert(client, stack, alert_id, headers, args.devices, started)
    seconds = time.monotonic() - started
    counts = state["counts"]
    sims = {p: stack.sim_stats(p, alert_id) for p in stack.simulators}
    sim_accepted = sum(int(s["accepted"]) for s in sims.values())
    duplicates = sum(int(s["duplicates"]) for s in sims.values())
    firsts = [s["first_accepted_at"] for s in sims.values() if s.get("first_accepted_at")]
    lasts = [s["last_accepted_at"] for s in sims.values() if s.get("last_accepted_at")]
    first_push_ms = (min(firsts) - triggered) * 1000 if firsts else None
    finished = sum(counts[k] for k in FINAL_OUTCOMES)
    send_seconds = (max(lasts) - min(firsts)) if firsts and lasts else seconds
    summary: dict[str, Any] = {
        "alert_id": alert_id,
        "status": state["status"],
        "audience": counts["audience"],
        "delivered": counts["delivered"],
        "invalid": counts["invalid"],
        "failed": counts["failed"],
        "counts_add_up": counts["audience"] == finished,
        "simulator_accepted": sim_accepted,
        "accepted_by_provider": {p: int(s["accepted"]) for p, s in sims.items()},
        "simulators_agree": sim_accepted == counts["delivered"],
        "duplicates": duplicates,
        "seconds": round(seconds, 2),
        "pushes_per_s": round(finished / seconds, 1) if seconds else None,
        "send_phase_pushes_per_s": round(finished / send_seconds, 1) if send_seconds else None,
        "first_push_ms": round(first_push_ms, 1) if first_push_ms is not None else None,
        "trigger_ms": round(trigger_ms, 1),
        "peak_rss_mb": {c.name: peak_rss_mb(c.process.pid) for c in [api, *workers]},
    }
    _print_summary(summary)
    if args.json:
        print(json.dumps(summary), flush=True)
    ok = (
        state["status"] == "done"
        and summary["counts_add_up"]
        and summary["simulators_agree"]
        and duplicates == 0
    )
    return 0 if ok else 1


def follow_alert(
    client: httpx.Client,
    stack: Stack,
    alert_id: str,
    headers: dict[str, str],
    devices: int,
    started: float,
) -> dict[str, Any]:
    # Generous: even the slowest client path manages a few hundred pushes a second.
    deadline = started + 120 + devices / 200
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/alerts/{alert_id}", headers=headers)
        if response.status_code != 200:  # a blip of the API must not end the demo
            say(f"\n  ! status poll answered {response.status_code}; retrying")
            time.sleep(1)
            continue
        state = response.json()
        counts = state["counts"]
        finished = sum(counts[k] for k in FINAL_OUTCOMES)
        total = counts["audience"] if counts["audience"] is not None else devices
        elapsed = time.monotonic() - started
        sys.stderr.write(_bar(finished, total, finished / max(elapsed, 1e-9)))
        sys.stderr.flush()
        if state["finished_at"]:
            sys.stderr.write("\n")
            return state
        dead = [c for c in stack.children if not c.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].name} died:\n{dead[0].tail()}")
        time.sleep(0.5)
    sys.stderr.write("\n")
    say("  ! the alert did not finish in time")
    return state


def _print_summary(s: dict[str, Any]) -> None:
    rss = ", ".join(f"{k} {v:.0f} MB" for k, v in s["peak_rss_mb"].items() if v is not None)
    lines = [
        "",
        f"  alert       {s['alert_id']}  ({s['status']})",
        f"  audience    {s['audience']:,}",
        f"  delivered   {s['delivered']:,}   invalid {s['invalid']:,}   failed {s['failed']:,}"
        f"   (add up: {'yes' if s['counts_add_up'] else 'NO'})",
        f"  simulators  accepted {s['simulator_accepted']:,}, duplicates {s['duplicates']}"
        f"   (agree with pushfan: {'yes' if s['simulators_agree'] else 'NO'})",
        f"  time        {s['seconds']} s, {s['pushes_per_s']:,} pushes/s overall, "
        f"first push after {s['first_push_ms']} ms, trigger answered in {s['trigger_ms']} ms",
        f"  peak RSS    {rss}",
    ]
    say("\n".join(lines))
