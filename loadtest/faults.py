"""Delivery guarantees, proven by breaking things.

Each scenario runs a real stack (both simulators with fault flags, the API, the expander and
senders as processes, the real RabbitMQ, Redis and PostgreSQL), breaks something, and ends by
comparing the simulators' statistics with pushfan's counts. One JSON object per scenario:
its name, pushfan's counts, the simulators' counts, `lost`, `duplicates`, `passed`.

    python loadtest/faults.py [--devices N] [--scenario NAME|all]

The fault-injection tests (tests/faults) run the same scenarios with a small population.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtest.stack import Stack
from pushfan import db
from pushfan.provider import Provider
from pushfan.settings import Settings

# Fast retries so a scenario at test size finishes in seconds; the ladder is the same.
FAULT_ENV = {
    "PUSHFAN_RETRY_BASE_S": "0.2",
    "PUSHFAN_RETRY_CAP_S": "2",
    "PUSHFAN_RETRY_MAX_ATTEMPTS": "15",
    "PUSHFAN_BATCH_LEASE_S": "5",
    "PUSHFAN_DRAIN_DEADLINE_S": "10",
}
ERRORS = ["--error-fraction", "0.1"]
WEB_FRACTION = 0.4  # the web drills' share of browsers; the rest are phones


@dataclass
class Run:
    """One scenario's stack, its data and its API key."""

    stack: Stack
    settings: Settings
    devices: int
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.stack.api_url, timeout=30, headers=self.headers)

    def trigger(self, body: dict[str, Any], key: str | None = None) -> str:
        headers = {"idempotency-key": key} if key else {}
        response = self.api.post("/v1/alerts", json=body, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"trigger answered {response.status_code}: {response.text}")
        return str(response.json()["id"])

    def state(self, alert_id: str) -> dict[str, Any]:
        """The alert as the API reports it; through an outage (503), as soon as it answers."""
        response = self.api.get(f"/v1/alerts/{alert_id}")
        while response.status_code == 503:
            time.sleep(0.2)
            response = self.api.get(f"/v1/alerts/{alert_id}")
        state: dict[str, Any] = response.json()
        return state

    def finished(self, state: dict[str, Any]) -> int:
        c = state["counts"]
        return int(c["delivered"] + c["invalid"] + c["failed"] + c["expired"] + c["cancelled"])

    def wait(self, alert_id: str, timeout_s: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout_s or 120 + self.devices / 100)
        while time.monotonic() < deadline:
            state = self.state(alert_id)
            if state["finished_at"]:
                return state
            time.sleep(0.25)
        raise TimeoutError(f"alert {alert_id} did not finish: {self.state(alert_id)}")

    def wait_progress(self, alert_id: str, fraction: float) -> None:
        """Until `fraction` of the audience has a final outcome."""
        while True:
            state = self.state(alert_id)
            audience = state["counts"]["audience"] or self.devices
            if state["finished_at"] or self.finished(state) >= fraction * audience:
                return
            time.sleep(0.05)

    def wait_sent(self, fraction: float, expected: int | None = None, *only: Provider) -> None:
        """Until the simulators (of `only`, default every provider of the stack) have
        accepted `fraction` of `expected` pushes (default the population). pushfan records
        outcomes per batch, so its own counts lag what is on the wire."""
        which = only or self.stack.providers
        target = fraction * (self.devices if expected is None else expected)
        while True:
            accepted = sum(int(self.stack.sim_stats(w)["accepted"]) for w in which)
            if accepted >= target:
                return
            time.sleep(0.05)

    def sims(self, alert_id: str) -> dict[str, Any]:
        """The simulators' statistics for the alert, summed over the stack's providers, with
        each provider's own under `by_provider`."""
        stats = {str(p): self.stack.sim_stats(p, alert_id) for p in self.stack.providers}
        rejected: dict[str, int] = {}
        for one in stats.values():
            for reason, count in one["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + count
        return {
            "accepted": sum(int(one["accepted"]) for one in stats.values()),
            "duplicates": sum(int(one["duplicates"]) for one in stats.values()),
            "rejected": rejected,
            "last_accepted_at": max(
                (one["last_accepted_at"] for one in stats.values() if one["last_accepted_at"]),
                default=None,
            ),
            "per_second": {p: one["per_second"] for p, one in stats.items()},
            "by_provider": {
                p: {k: one[k] for k in ("accepted", "duplicates", "rejected", "distinct_tokens")}
                for p, one in stats.items()
            },
        }


@contextmanager
def stack(
    devices: int,
    *,
    env: dict[str, str] | None = None,
    apns: list[str] | None = None,
    fcm: list[str] | None = None,
    web: list[str] | None = None,
    senders: dict[str, int] | None = None,
    ios_fraction: float = 0.5,
    web_fraction: float = 0.0,
    workers: bool = True,
) -> Iterator[Run]:
    """A stack of one app; with `web_fraction` > 0 it runs the Web Push simulator (flags
    `web`) and web senders too, and that share of the devices are its subscriptions."""
    name = f"faults_{secrets.token_hex(3)}"
    env = {**FAULT_ENV, **(env or {})}
    s = Stack.create(name, apps=("alpha",), extra_env=env, web=web_fraction > 0)
    try:
        key = s.prepare(devices, ios_fraction=ios_fraction, web_fraction=web_fraction)
        s.start_simulators(apns_extra=apns, fcm_extra=fcm, web_extra=web)
        s.start_api()
        if workers:
            s.start_workers(senders=senders)
        yield Run(s, s.settings, devices, {"authorization": f"Bearer {key}"})
    finally:
        s.stop()
        s.cleanup()


def _verdict(
    name: str,
    run: Run,
    alert_id: str,
    state: dict[str, Any],
    sims: dict[str, Any],
    checks: dict[str, bool],
    started: float,
    **details: Any,
) -> dict[str, Any]:
    counts = state["counts"]
    lost = counts["audience"] - run.finished(state)
    result = {
        "scenario": name,
        "devices": run.devices,
        "alert_id": alert_id,
        "status": state["status"],
        "counts": counts,
        "simulators": {k: v for k, v in sims.items() if k != "per_second"},
        "lost": lost,
        "duplicates": sims["duplicates"],
        "seconds": round(time.monotonic() - started, 1),
        "checks": checks,
        **details,
    }
    result["passed"] = lost == 0 and all(checks.values())
    return result


ALERT = {"title": "Fault drill", "body": "This is only a test", "ttl": 3600}


def exactly_once(counts: dict[str, Any], sims: dict[str, Any], devices: int) -> dict[str, bool]:
    """Every device delivered, each once by the simulators' count, nothing failed."""
    return {
        "every device delivered": counts["delivered"] == counts["audience"] == devices,
        "failed == 0": counts["failed"] == 0,
        "simulators agree": sims["accepted"] == counts["delivered"],
        "no duplicates": sims["duplicates"] == 0,
    }


def in_flight_window() -> int:
    """Pushes a SIGKILLed sender may have sent but not recorded (README: the one window)."""
    settings = Settings()
    return settings.sender_prefetch * settings.batch_size


def despite_kills(
    counts: dict[str, Any], sims: dict[str, Any], devices: int, kills: int
) -> dict[str, bool]:
    """Every device delivered and seen by the simulators, nothing failed, duplicates only
    within the in-flight window of each of `kills` SIGKILLs."""
    return {
        "every device delivered": counts["delivered"] == counts["audience"] == devices,
        "failed == 0": counts["failed"] == 0,
        "simulators saw every device": sims["accepted"] - sims["duplicates"] == counts["delivered"],
        f"duplicates within {kills} in-flight windows": sims["duplicates"]
        <= kills * in_flight_window(),
    }


def storms(devices: int) -> list[str]:
    """Simulator flags for 10% 5xx answers and a rate limit (per simulator) that answers
    bursts of 429 at any population."""
    return [*ERRORS, "--rate-limit", str(min(4_000, max(300, devices // 20)))]


def errors_and_throttling(devices: int) -> dict[str, Any]:
    """10% of requests answered 500/503, and a rate limit on each simulator that answers
    bursts of 429: every device delivered exactly once, nothing failed."""
    started = time.monotonic()
    faults = storms(devices)
    with stack(devices, apns=faults, fcm=faults) as run:
        alert_id = run.trigger(ALERT)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        rejected = sims["rejected"]
        checks = {
            **exactly_once(c, sims, devices),
            "5xx were injected": rejected.get("InternalServerError", 0)
            + rejected.get("ServiceUnavailable", 0)
            + rejected.get("INTERNAL", 0)
            + rejected.get("UNAVAILABLE", 0)
            > 0,
            "429s were answered": rejected.get("TooManyRequests", 0)
            + rejected.get("QUOTA_EXCEEDED", 0)
            > 0,
        }
        return _verdict("errors", run, alert_id, state, sims, checks, started)


def web_devices(run: Run) -> int:
    """The stack's active web subscriptions (the drill's browser audience)."""

    async def count() -> int:
        connection = await db.connect(run.settings)
        try:
            query = "SELECT count(*) FROM devices WHERE active AND platform = 'web'"
            return int(await connection.fetchval(query))
        finally:
            await connection.close()

    return asyncio.run(count())


def web_storms(devices: int) -> dict[str, Any]:
    """Browsers beside phones, every simulator answering 10% 500/503 and bursts of 429: the
    web pushes go through the same retry ladder, and every device, browser or phone, is
    delivered exactly once."""
    started = time.monotonic()
    faults = storms(devices)
    with stack(devices, apns=faults, fcm=faults, web=faults, web_fraction=WEB_FRACTION) as run:
        browsers = web_devices(run)
        alert_id = run.trigger(ALERT)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        web = sims["by_provider"]["web"]
        checks = {
            **exactly_once(state["counts"], sims, devices),
            "every browser delivered once": int(web["accepted"]) == browsers > 0
            and web["duplicates"] == 0,
            "web 5xx were injected": web["rejected"].get("InternalServerError", 0)
            + web["rejected"].get("Unavailable", 0)
            > 0,
            "web 429s were answered": web["rejected"].get("TooManyRequests", 0) > 0,
        }
        return _verdict("web-errors", run, alert_id, state, sims, checks, started)


def web_kills(devices: int) -> dict[str, Any]:
    """Two web senders under the same storms, each SIGKILLed once mid web batch (at 20% and
    50% of the browsers) and respawned; no broker or store is touched. Every device is
    delivered; a browser may see a push twice only within the in-flight window of a kill
    (they carry the alert's Topic, so it shows one)."""
    started = time.monotonic()
    faults = storms(devices)
    senders = {"apns": 1, "fcm": 1, "web": 2}
    with stack(
        devices, apns=faults, fcm=faults, web=faults, senders=senders, web_fraction=WEB_FRACTION
    ) as run:
        browsers = web_devices(run)
        alert_id = run.trigger(ALERT)
        events = []
        for n, fraction in enumerate((0.2, 0.5)):
            run.wait_sent(fraction, browsers, Provider.WEB)
            [victim] = run.stack.find(f"sender-web-{n}")  # each web sender once
            run.stack.kill(victim)
            victim.process.wait()
            events.append(f"SIGKILL {victim.name} at {fraction:.0%} of the browsers")
            run.stack.respawn(victim)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        web = sims["by_provider"]["web"]
        window = in_flight_window()
        checks = {
            **despite_kills(state["counts"], sims, devices, kills=2),
            "every browser delivered": int(web["distinct_tokens"]) == browsers > 0,
        }
        return _verdict(
            "web-kills",
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            events=events,
            in_flight_window=window,
        )


def _restart_broker() -> None:
    """Stop and start the RabbitMQ application: every connection drops, queues recover."""
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
    time.sleep(1)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)


def kills_and_broker_restart(devices: int) -> dict[str, Any]:
    """The same faults, a sender SIGKILLed three times and restarted, and RabbitMQ restarted
    once: nothing lost; duplicates bounded by the in-flight window of each kill."""
    started = time.monotonic()
    faults = storms(devices)
    with stack(devices, apns=faults, fcm=faults, senders={"apns": 2, "fcm": 2}) as run:
        alert_id = run.trigger(ALERT)
        events = []
        for n, fraction in enumerate((0.15, 0.35, 0.55)):
            run.wait_sent(fraction)
            victim = run.stack.find("sender-")[n % 4]
            run.stack.kill(victim)
            victim.process.wait()
            events.append(f"SIGKILL {victim.name} at {fraction:.0%}")
            run.stack.respawn(victim)
            if n == 1:
                run.wait_sent(0.45)
                _restart_broker()
                events.append("RabbitMQ restarted at 45%")
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        window = in_flight_window()
        checks = despite_kills(state["counts"], sims, devices, kills=3)
        return _verdict(
            "kills",
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            events=events,
            in_flight_window=window,
        )


def broker_restart(devices: int) -> dict[str, Any]:
    """RabbitMQ restarted mid-alert under 5xx and 429 storms, no worker killed: nothing
    lost and nothing sent twice. Unacked batches are redelivered while their retries are in
    the delay ladder; one lease per batch, whatever the attempt, keeps the copies apart."""
    started = time.monotonic()
    faults = storms(devices)
    with stack(devices, apns=faults, fcm=faults, senders={"apns": 2, "fcm": 2}) as run:
        alert_id = run.trigger(ALERT)
        run.wait_sent(0.45)
        _restart_broker()
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        checks = exactly_once(c, sims, devices)
        return _verdict("restart", run, alert_id, state, sims, checks, started)


def quota(devices: int, rate: int | None = None) -> dict[str, Any]:
    """FCM simulator limited to R pushes/s while pushfan believes the quota is 20% higher (a
    project whose quota is lower than configured), two FCM senders: the observed rate
    settles within 5% of R and the 429s stop after the first adaptation."""
    started = time.monotonic()
    rate = rate or max(200, devices // 30)
    with stack(
        devices,
        fcm=["--rate-limit", str(rate)],
        senders={"fcm": 2},
        ios_fraction=0.0,
        env={"PUSHFAN_FCM_RATE_LIMIT_PER_S": str(int(rate * 1.2))},
    ) as run:
        alert_id = run.trigger(ALERT)
        throttled_at = None
        while throttled_at is None:
            fcm = run.stack.sim_stats("fcm")
            if fcm["rejected"].get("QUOTA_EXCEEDED"):
                throttled_at = time.time()
            elif run.state(alert_id)["finished_at"]:
                break
            time.sleep(0.1)
        time.sleep(3)  # one adaptation window and the retries it scheduled
        after_first = run.stack.sim_stats("fcm")["rejected"].get("QUOTA_EXCEEDED", 0)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        at_end = sims["rejected"].get("QUOTA_EXCEEDED", 0)
        steady = [
            count
            for second, count in sims["per_second"]["fcm"]
            # steady state: after the adaptation, before the backlog's tail drains
            if throttled_at and throttled_at + 3 <= second < (sims["last_accepted_at"] or 0) - 3
        ]
        observed = statistics.fmean(steady) if steady else 0.0
        c = state["counts"]
        checks = {
            "every device delivered": c["delivered"] == c["audience"] == devices,
            "observed rate within 5% of R": abs(observed - rate) <= 0.05 * rate,
            "429s stopped after the first adaptation": at_end == after_first,
            "no duplicates": sims["duplicates"] == 0,
        }
        return _verdict(
            "quota",
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            rate_limit=rate,
            observed_rate=observed,
            steady_seconds=len(steady),
            throttled_429s=at_end,
        )


def expiry(devices: int) -> dict[str, Any]:
    """An alert with a 5-second TTL while the senders are paused for 10 seconds: all of its
    pushes expire, none is sent."""
    started = time.monotonic()
    with stack(devices) as run:
        senders = run.stack.find("sender-")
        for sender in senders:
            run.stack.kill(sender, signal.SIGSTOP)
        alert_id = run.trigger({**ALERT, "ttl": 5})
        time.sleep(10)
        for sender in senders:
            run.stack.kill(sender, signal.SIGCONT)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        checks = {
            "all expired": c["expired"] == c["audience"] == devices,
            "none sent": sims["accepted"] == 0 and c["delivered"] == 0,
        }
        return _verdict("expiry", run, alert_id, state, sims, checks, started)


def cancel(devices: int) -> dict[str, Any]:
    """Cancel while sending: nothing reaches a simulator more than 1 s after the cancel."""
    started = time.monotonic()
    # Slow enough (~200 pushes/s) that the cancel lands mid-send at any population.
    slow = ["--latency-ms", "50"]
    with stack(devices, apns=slow, fcm=slow, env={"PUSHFAN_SENDER_CONCURRENCY": "5"}) as run:
        alert_id = run.trigger(ALERT)
        run.wait_sent(0.2)
        response = run.api.post(f"/v1/alerts/{alert_id}/cancel")
        cancelled_at = time.time()
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        last = sims["last_accepted_at"] or 0
        checks = {
            "cancel accepted": response.status_code == 200,
            "status cancelled": state["status"] == "cancelled",
            "nothing sent 1 s after the cancel": last <= cancelled_at + 1.0,
            "some were cancelled": c["cancelled"] > 0,
            "simulators agree": sims["accepted"] == c["delivered"],
        }
        return _verdict(
            "cancel",
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            last_push_after_cancel_s=round(last - cancelled_at, 3),
        )


def sigterm(devices: int) -> dict[str, Any]:
    """SIGTERM a sender mid-run: it exits before its drain deadline, and once a replacement
    takes over nothing is lost or sent twice."""
    started = time.monotonic()
    slow = ["--latency-ms", "50"]
    env = {"PUSHFAN_SENDER_CONCURRENCY": "20"}
    with stack(devices, apns=slow, fcm=slow, env=env) as run:
        alert_id = run.trigger(ALERT)
        run.wait_sent(0.3)
        victim = run.stack.find("sender-apns")[0]
        term_at = time.monotonic()
        run.stack.kill(victim, signal.SIGTERM)
        code = victim.process.wait(timeout=60)
        exit_s = time.monotonic() - term_at
        run.stack.respawn(victim)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        deadline = float(FAULT_ENV["PUSHFAN_DRAIN_DEADLINE_S"])
        checks = {
            "exited before the drain deadline": exit_s < deadline and code == 0,
            "every device delivered": c["delivered"] == c["audience"] == devices,
            "no duplicates": sims["duplicates"] == 0,
            "simulators agree": sims["accepted"] == c["delivered"],
        }
        return _verdict(
            "sigterm", run, alert_id, state, sims, checks, started, exit_seconds=round(exit_s, 2)
        )


def idempotency(devices: int) -> dict[str, Any]:
    """The same Idempotency-Key posted 5 times at once: one alert, every push sent once."""
    started = time.monotonic()
    with stack(devices) as run:
        ids: list[str] = []
        key = f"drill-{secrets.token_hex(4)}"

        def post() -> None:
            ids.append(run.trigger(ALERT, key=key))

        threads = [threading.Thread(target=post) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        alert_id = ids[0]
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        checks = {
            "one alert": len(set(ids)) == 1 and len(ids) == 5,
            "every device once": sims["accepted"] == c["delivered"] == c["audience"] == devices,
            "no duplicates": sims["duplicates"] == 0,
        }
        return _verdict("idempotency", run, alert_id, state, sims, checks, started)


SCENARIOS: dict[str, Callable[[int], dict[str, Any]]] = {
    "errors": errors_and_throttling,
    "kills": kills_and_broker_restart,
    "restart": broker_restart,
    "quota": quota,
    "expiry": expiry,
    "cancel": cancel,
    "sigterm": sigterm,
    "idempotency": idempotency,
    "web-errors": web_storms,
    "web-kills": web_kills,
}
FULL_SIZE = {"errors": 1_000_000, "kills": 1_000_000, "restart": 200_000}


def main() -> int:
    # The stores' scenarios (private Redis, Sentinel, PostgreSQL) live beside these; they
    # import this module's helpers, so they are looked up here rather than at import.
    from loadtest import schedule_faults, store_faults

    scenarios = {**SCENARIOS, **store_faults.SCENARIOS, **schedule_faults.SCENARIOS}
    sizes = {**FULL_SIZE, **store_faults.FULL_SIZE, **schedule_faults.FULL_SIZE}
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--devices",
        type=int,
        help="population (default: 10^6 for errors and kills, 200,000 for restart, 100,000 "
        "for the stores' scenarios, else 20,000)",
    )
    parser.add_argument("--scenario", default="all", choices=[*scenarios, "all"])
    args = parser.parse_args()
    names = list(scenarios) if args.scenario == "all" else [args.scenario]
    failed = 0
    for name in names:
        devices = args.devices or sizes.get(name, 20_000)
        result = scenarios[name](devices)
        failed += not result["passed"]
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
