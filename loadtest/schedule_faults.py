"""Scheduled alerts broken on purpose (issue 16): the processes that run the scheduler
SIGKILLed around `send_at`.

Every worker process runs the scheduler (pushfan.workers.scheduler). This drill adds three
feedback workers (schedulers with no pushes of their own in flight) to the expander and the
senders, schedules several alerts for the same instant, and from 1 s before that instant to
2 s after it SIGKILLs one of the feedback workers or the expander every 0.2 s, restarting it
at once (not waiting for it to start, so a kill may also land in a start-up). The senders
are left alone, so any duplicate would be the scheduler's or the expander's doing, not a
sender's in-flight window: the verdict wants every device delivered once per alert,
0 duplicates, and no push before `send_at`.

    python loadtest/faults.py --scenario schedule_kills [--devices N]
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loadtest.faults import ALERT, Run, _verdict, stack

ALERTS = 8
LEAD_S = 4.0  # send_at this far after the triggers
KILL_FROM_S, KILL_UNTIL_S, KILL_EVERY_S = -1.0, 2.0, 0.2


def _kill_around(run: Run, send_at: float) -> list[str]:
    """SIGKILL a random scheduler-running worker every KILL_EVERY_S around `send_at`, each
    restarted at once; the kills made."""
    rng = random.Random(16)
    events = []
    while time.time() < send_at + KILL_UNTIL_S:
        if time.time() >= send_at + KILL_FROM_S:
            victim = rng.choice(run.stack.find("feedback-") + run.stack.find("expander"))
            run.stack.kill(victim)
            victim.process.wait()
            events.append(f"SIGKILL {victim.name} at send_at{time.time() - send_at:+.2f}s")
            # restarted without waiting for it to consume: the next kill may land mid-start
            run.stack.children.remove(victim)
            run.stack.spawn(victim.name, victim.args, victim.env)
        time.sleep(KILL_EVERY_S)
    return events


def scheduler_kills(devices: int) -> dict[str, Any]:
    """Alerts scheduled for one instant, their schedulers SIGKILLed around it: each fired
    exactly once (every device delivered once, 0 duplicates), none early."""
    started = time.monotonic()
    with stack(devices) as run:
        for n in range(3):
            child = run.stack.spawn(f"feedback-{n}", ["worker", "feedback"])
            run.stack.wait_for_log(child, "consuming")
        send_at = time.time() + LEAD_S
        body = {**ALERT, "send_at": datetime.fromtimestamp(send_at, UTC).isoformat()}
        ids = [run.trigger(body) for _ in range(ALERTS)]
        events = _kill_around(run, send_at)
        states = [run.wait(a) for a in ids]
        sims = [run.sims(a) for a in ids]
        first = _first_push(run)
        checks = {
            "every alert fired": all(s["fired_at"] for s in states),
            "every device delivered once per alert": all(
                s["counts"]["delivered"] == s["counts"]["audience"] == devices for s in states
            ),
            "simulators saw each device once": all(
                x["accepted"] == devices and x["duplicates"] == 0 for x in sims
            ),
            "nothing before send_at": first >= send_at,
        }
        total = {
            "accepted": sum(x["accepted"] for x in sims),
            "duplicates": sum(x["duplicates"] for x in sims),
            "rejected": {},
        }
        merged = {**states[0], "counts": _sum_counts(states)}
        return _verdict(
            "schedule_kills",
            run,
            ",".join(ids),
            merged,
            total,
            checks,
            started,
            alerts=len(ids),
            kills=len(events),
            first_push_after_send_at_s=round(first - send_at, 3),
            events=events,
        )


def scheduled_on_time(devices: int) -> dict[str, Any]:
    """One alert scheduled 3 s ahead on an idle stack: fired (queued by a scheduler) within
    1 s of `send_at`, no push before it; how long after `send_at` the first push reached a
    simulator (the wake-up, the expansion and the first batch) is reported."""
    started = time.monotonic()
    with stack(devices) as run:
        send_at = time.time() + 3
        body = {**ALERT, "send_at": datetime.fromtimestamp(send_at, UTC).isoformat()}
        alert_id = run.trigger(body)
        state = run.wait(alert_id)
        sims = run.sims(alert_id)
        first = _first_push(run)
        fired_at = datetime.fromisoformat(state["fired_at"]).timestamp()
        c = state["counts"]
        checks = {
            "every device delivered": c["delivered"] == c["audience"] == devices,
            "no duplicates": sims["duplicates"] == 0,
            "fired within 1 s of send_at": send_at <= fired_at <= send_at + 1,
            "no push before send_at": first >= send_at,
        }
        return _verdict(
            "schedule_on_time",
            run,
            alert_id,
            state,
            sims,
            checks,
            started,
            fired_after_send_at_s=round(fired_at - send_at, 3),
            first_push_after_send_at_s=round(first - send_at, 3),
        )


def _first_push(run: Run) -> float:
    """When the first push of the stack reached a simulator (epoch seconds)."""
    return min(
        run.stack.sim_stats(w)["first_accepted_at"] or float("inf") for w in run.stack.providers
    )


def _sum_counts(states: list[dict[str, Any]]) -> dict[str, int]:
    keys = states[0]["counts"].keys()
    return {k: sum(int(s["counts"][k] or 0) for s in states) for k in keys}


SCENARIOS: dict[str, Callable[[int], dict[str, Any]]] = {
    "schedule_kills": scheduler_kills,
    "schedule_on_time": scheduled_on_time,
}
FULL_SIZE = {"schedule_kills": 20_000, "schedule_on_time": 20_000}
