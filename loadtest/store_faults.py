"""The ledger's stores broken mid-alert: Redis restarted empty, Redis SIGKILLed with AOF,
a Sentinel failover, Redis and PostgreSQL unreachable, a cancel followed by a Redis restart.

Each scenario starts its own Redis (or Sentinel group, or PostgreSQL) on free ports and
points the stack at it; the shared services are never touched. Same verdict as
loadtest/faults.py: pushfan's counts against the simulators', plus what the scenario adds
(the alert's recovery report, what the API answered during an outage).

    python loadtest/faults.py --scenario redis-restart [--devices N]
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from loadtest.faults import ALERT, Run, _verdict, stack
from loadtest.private_services import PrivatePostgres, PrivateRedis, SentinelGroup

SENDERS = {"apns": 2, "fcm": 2}
# About 1,000 pushes/s per sender, so a test-size alert is mid-send long enough to break
# something at 40%.
SLOW = ["--latency-ms", "20"]
SLOW_ENV = {"PUSHFAN_SENDER_CONCURRENCY": "25"}


def in_flight_window(run: Run) -> int:
    """The README's bound on pushes sent twice after a Redis loss: every sender's batches
    on the wire and not yet recorded (prefetch x batch size each)."""
    settings = run.settings
    return sum(SENDERS.values()) * settings.sender_prefetch * settings.batch_size


@contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pushfan-store-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def private_redis(*, appendonly: bool = False) -> Iterator[PrivateRedis]:
    with _workdir() as workdir:
        server = PrivateRedis(workdir, appendonly=appendonly)
        server.start()
        try:
            yield server
        finally:
            server.stop(signal.SIGKILL)


def _ledger_checks(
    run: Run, state: dict[str, Any], sims: dict[str, Any], lost_state: bool
) -> dict[str, bool]:
    """`lost_state`: Redis certainly lost the ledger (a restart without persistence). A
    SIGKILL with AOF or a failover may lose nothing (what Redis had written reached the
    kernel; the replica had caught up): then no recovery is needed, and none may be made."""
    c = state["counts"]
    recovery = state.get("recovery") or {}
    recovered = recovery.get("count", 0) >= 1
    return {
        "every device delivered": c["delivered"] == c["audience"] == run.devices,
        "failed == 0": c["failed"] == 0,
        "simulators saw every device": sims["accepted"] - sims["duplicates"] == c["delivered"],
        "duplicates within the in-flight window": sims["duplicates"] <= in_flight_window(run),
        "a loss was recovered and reported": recovered or not lost_state,
        "re-sent pushes reported": recovery.get("resent", 0) == sims["duplicates"],
    }


def _loss(
    name: str, devices: int, break_it: Callable[[Run], str], lost_state: bool, **servers: Any
) -> dict[str, Any]:
    started = time.monotonic()
    with stack(devices, apns=SLOW, fcm=SLOW, senders=SENDERS, env={**SLOW_ENV, **servers}) as run:
        alert_id = run.trigger(ALERT)
        run.wait_sent(0.4)
        event = break_it(run)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        checks = _ledger_checks(run, state, sims, lost_state)
        return _verdict(
            name,
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            event=event,
            recovery=state.get("recovery"),
            in_flight_window=in_flight_window(run),
        )


def redis_restart(devices: int) -> dict[str, Any]:
    """Redis (no persistence) restarted when 40% were sent: it comes back empty; the ledger
    is rebuilt from PostgreSQL and the alert finishes exactly."""
    with private_redis() as redis:

        def restart(run: Run) -> str:
            redis.restart()
            return "Redis restarted empty at 40%"

        return _loss("redis-restart", devices, restart, True, PUSHFAN_REDIS_URL=redis.url)


def redis_aof_kill(devices: int) -> dict[str, Any]:
    """Redis with AOF `appendfsync everysec` SIGKILLed at 40% and restarted: it comes back
    up to a second behind; whoever saw the lost writes notices, and the ledger is rebuilt."""
    with private_redis(appendonly=True) as redis:

        def kill(run: Run) -> str:
            redis.restart(signal.SIGKILL)
            return "Redis (AOF everysec) SIGKILLed and restarted at 40%"

        return _loss("redis-aof-kill", devices, kill, False, PUSHFAN_REDIS_URL=redis.url)


def sentinel_failover(devices: int) -> dict[str, Any]:
    """A master, a replica and three sentinels; the master SIGKILLed at 40%: the sentinels
    promote the replica, the clients follow it, and a replica that was behind is noticed."""
    with _workdir() as workdir:
        group = SentinelGroup(workdir)
        group.start()
        try:

            def fail(run: Run) -> str:
                seconds = group.fail_master()
                return f"master SIGKILLed at 40%, replica promoted after {seconds:.1f}s"

            return _loss(
                "sentinel-failover",
                devices,
                fail,
                False,
                PUSHFAN_REDIS_URL="redis://127.0.0.1/0",
                PUSHFAN_REDIS_SENTINELS=group.addresses,
                PUSHFAN_REDIS_SENTINEL_SERVICE=group.service,
            )
        finally:
            group.stop()


# A trigger that matches no device: it exercises the whole trigger path and sends nothing.
EMPTY_AUDIENCE = {**ALERT, "audience": {"tags": ["drill-nobody"]}}


class ApiProbe:
    """Polls the API while a service is away: every answer's status, and the slowest."""

    def __init__(self, run: Run, alert_id: str) -> None:
        self.run = run
        self.alert_id = alert_id
        self.statuses: Counter[str] = Counter()
        self.slowest_s = 0.0
        self.retry_after_missing = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        client = httpx.Client(base_url=self.run.stack.api_url, timeout=15, headers=self.run.headers)
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", f"/v1/alerts/{self.alert_id}", None),
            ("POST", "/v1/alerts", EMPTY_AUDIENCE),
            ("GET", "/readyz", None),
        ]
        with client:
            while not self._stop.is_set():
                for method, path, body in calls:
                    began = time.monotonic()
                    try:
                        response = client.request(method, path, json=body)
                        status = str(response.status_code)
                        if (
                            response.status_code == 503
                            and path != "/readyz"  # a probe's answer, not a client's
                            and "retry-after" not in response.headers
                        ):
                            self.retry_after_missing += 1
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    self.slowest_s = max(self.slowest_s, time.monotonic() - began)
                    self.statuses[
                        f"{method} {path.split('/')[-1] if 'alerts/' in path else path} {status}"
                    ] += 1
                time.sleep(0.2)

    def __enter__(self) -> ApiProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def saw(self, status: str) -> bool:
        return any(key.endswith(f" {status}") for key in self.statuses)


def _outage_checks(
    run: Run, state: dict[str, Any], sims: dict[str, Any], probe: ApiProbe
) -> dict[str, bool]:
    c = state["counts"]
    return {
        "every device delivered": c["delivered"] == c["audience"] == run.devices,
        "failed == 0": c["failed"] == 0,
        "simulators agree": sims["accepted"] == c["delivered"],
        "no duplicates": sims["duplicates"] == 0,
        "the API answered 503 meanwhile": probe.saw("503"),
        "never a 500": not probe.saw("500"),
        "every 503 had Retry-After": probe.retry_after_missing == 0,
        "no answer slower than 5 s": probe.slowest_s < 5,
    }


def _outage(
    name: str,
    devices: int,
    away_s: float,
    cut: Callable[[], None],
    mend: Callable[[], None],
    env: dict[str, str],
) -> dict[str, Any]:
    started = time.monotonic()
    with stack(devices, apns=SLOW, fcm=SLOW, senders=SENDERS, env={**SLOW_ENV, **env}) as run:
        alert_id = run.trigger(ALERT)
        run.wait_sent(0.4)
        with ApiProbe(run, alert_id) as probe:
            cut()
            time.sleep(away_s)
            mend()
            time.sleep(2)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        checks = _outage_checks(run, state, sims, probe)
        return _verdict(
            name,
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            away_s=away_s,
            api_answers=dict(probe.statuses),
            slowest_answer_s=round(probe.slowest_s, 2),
        )


def _away_s(devices: int) -> float:
    return 30.0 if devices >= 50_000 else 8.0


def redis_outage(devices: int) -> dict[str, Any]:
    """Redis unreachable (the process frozen, so connections hang rather than fail) for 30 s
    at 40% (8 s at test size): nothing lost or sent twice, the API answers 503 meanwhile."""
    with private_redis() as redis:
        assert redis.process is not None
        pid = redis.process.pid
        return _outage(
            "redis-outage",
            devices,
            _away_s(devices),
            lambda: os_kill(pid, signal.SIGSTOP),
            lambda: os_kill(pid, signal.SIGCONT),
            {"PUSHFAN_REDIS_URL": redis.url},
        )


def os_kill(pid: int, sig: int) -> None:
    import os

    os.kill(pid, sig)


def postgres_outage(devices: int) -> dict[str, Any]:
    """A private PostgreSQL stopped (fast shutdown) at 40% and started again 30 s later (8 s
    at test size), while triggers keep coming: nothing lost or sent twice, the API answers
    503 meanwhile (never 500), the workers hold their batches and carry on."""
    postgres = PrivatePostgres()
    postgres.start()
    try:
        return _outage(
            "postgres-outage",
            devices,
            _away_s(devices),
            postgres.stop,
            postgres.start,
            {"PUSHFAN_DATABASE_URL": postgres.url},
        )
    finally:
        postgres.remove()


def cancel_then_redis_restart(devices: int) -> dict[str, Any]:
    """Cancel mid-send, then Redis restarts empty: the cancel is re-read from PostgreSQL and
    nothing of the alert reaches a simulator more than 1 s after the cancel."""
    started = time.monotonic()
    slow = ["--latency-ms", "50"]
    with (
        private_redis() as redis,
        stack(
            devices,
            apns=slow,
            fcm=slow,
            env={"PUSHFAN_SENDER_CONCURRENCY": "5", "PUSHFAN_REDIS_URL": redis.url},
        ) as run,
    ):
        alert_id = run.trigger(ALERT)
        run.wait_sent(0.2)
        response = run.api.post(f"/v1/alerts/{alert_id}/cancel")
        cancelled_at = time.time()
        redis.restart()
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        c = state["counts"]
        last = sims["last_accepted_at"] or 0
        recovery = state.get("recovery") or {}
        checks = {
            "cancel accepted": response.status_code == 200,
            "status cancelled": state["status"] == "cancelled",
            "nothing sent 1 s after the cancel": last <= cancelled_at + 1.0,
            "counts add up": run.finished(state) == c["audience"] == devices,
            "simulators agree": sims["accepted"] == c["delivered"],
            "the loss was recovered and reported": recovery.get("count", 0) >= 1,
        }
        return _verdict(
            "cancel-redis-restart",
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            last_push_after_cancel_s=round(last - cancelled_at, 3),
            recovery=state.get("recovery"),
        )


SCENARIOS: dict[str, Callable[[int], dict[str, Any]]] = {
    "redis-restart": redis_restart,
    "redis-aof-kill": redis_aof_kill,
    "sentinel-failover": sentinel_failover,
    "redis-outage": redis_outage,
    "postgres-outage": postgres_outage,
    "cancel-redis-restart": cancel_then_redis_restart,
}
FULL_SIZE = dict.fromkeys(SCENARIOS, 100_000)
