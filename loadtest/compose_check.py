"""`make compose-test`: the compose stack brought up for real and used as a user would.

    python -m loadtest.compose_check [--devices N] [--keep]

Brings up deploy/docker-compose.yml with podman-compose (local images, ports moved: see
loadtest/compose_stack.py), then, through the published ports and the containerised CLI:
creates an API key (`pushfan keys create`), seeds N devices (`pushfan devices seed`) and
triggers three global alerts, each followed to `done` and checked against the simulators'
/_sim/stats (every device delivered once, no duplicates):

  1. undisturbed;
  2. `podman stop` (SIGTERM) of the APNs sender mid-alert: it must exit 0 within
     PUSHFAN_DRAIN_DEADLINE_S, logging its drain summary; it is started again after;
  3. `podman restart` of the RabbitMQ container mid-alert.

Then: Prometheus scrapes every target of deploy/prometheus/prometheus.yml; every pushfan
container runs as uid 10001 on a read-only root filesystem; the image's HEALTHCHECK passes
for each long-running kind and fails when its endpoint does not answer. Grafana is not
started: Debian has no package of it to build a local image from.

Prints a report, the JSON summary, then `compose-test: N passed, N failed` (one per alert,
Prometheus and the container checks) as its last line; exits 1 if any check failed, and
takes the stack down (volumes included) unless --keep.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from loadtest.compose_stack import DEPLOY, ComposeError, ComposeStack

INFRA = ["rabbitmq", "redis", "postgres"]
ONE_SHOT = ["credentials", "migrate"]
WORKERS = ["expander", "feedback", "sender-apns", "sender-fcm", "sender-web"]
APP = ["api", *WORKERS, "sim-apns", "sim-fcm", "sim-web"]
# Grafana has no Debian package: no local image, so it is left out of the stack here.
STARTED = [*INFRA, *ONE_SHOT, *APP, "prometheus"]
FINAL = ("delivered", "invalid", "failed", "expired", "cancelled")
CREDENTIALS = "/var/lib/pushfan/credentials"
UID = 10001

Hook = Callable[[ComposeStack], dict[str, Any]]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise ComposeError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(1)
    return time.monotonic() - started


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def drain_deadline_s() -> int:
    (doc,) = yaml.safe_load_all((DEPLOY / "docker-compose.yml").read_text())
    return int(doc["x-pushfan-env"]["PUSHFAN_DRAIN_DEADLINE_S"])


class Simulators:
    """The simulators' /_sim/stats on their published ports (HTTP/2 over TLS, dev CA)."""

    def __init__(self, stack: ComposeStack, ca_pem: str) -> None:
        context = ssl.create_default_context(cadata=ca_pem)
        context.check_hostname = False  # the certificate names sim-apns/sim-fcm, not 127.0.0.1
        self.client = httpx.Client(http2=True, verify=context, timeout=60)
        self.urls = {
            "apns": stack.url("HOST_PORT_SIM_APNS", "https"),
            "fcm": stack.url("HOST_PORT_SIM_FCM", "https"),
        }

    def stats(self, collapse_id: str) -> dict[str, int]:
        total = {"accepted": 0, "duplicates": 0}
        for url in self.urls.values():
            response = self.client.get(f"{url}/_sim/stats", params={"collapse_id": collapse_id})
            response.raise_for_status()
            for k in total:
                total[k] += int(response.json()[k])
        return total


def run_alert(
    stack: ComposeStack,
    api: httpx.Client,
    sims: Simulators,
    devices: int,
    label: str,
    during: Hook | None = None,
) -> dict[str, Any]:
    """Trigger a global alert, run `during` once a fifth of it is delivered, follow it to
    the end, and compare its counts with what the simulators accepted."""
    body = {"title": f"compose test: {label}", "body": "pushfan compose stack", "ttl": 3600}
    started = time.monotonic()
    response = api.post("/v1/alerts", json=body, headers={"idempotency-key": f"{label}-{started}"})
    if response.status_code != 202:
        raise ComposeError(f"trigger answered {response.status_code}: {response.text}")
    alert_id = response.json()["id"]
    hook_report: dict[str, Any] = {}
    state: dict[str, Any] = {}
    deadline = started + 600
    while time.monotonic() < deadline:
        try:
            response = api.get(f"/v1/alerts/{alert_id}")
        except httpx.HTTPError:
            time.sleep(1)  # e.g. while the broker restarts
            continue
        if response.status_code != 200:
            time.sleep(1)
            continue
        state = response.json()
        counts = state["counts"]
        if during is not None and not hook_report and counts["delivered"] >= devices // 5:
            hook_report = {"delivered_when_disturbed": counts["delivered"], **during(stack)}
        if state["finished_at"]:
            break
        time.sleep(0.5)
    counts = state.get("counts", {})
    sim = sims.stats(alert_id)
    finished = sum(int(counts.get(k) or 0) for k in FINAL)
    result = {
        "alert_id": alert_id,
        "status": state.get("status"),
        "seconds": round(time.monotonic() - started, 1),
        "audience": counts.get("audience"),
        "delivered": counts.get("delivered"),
        "invalid": counts.get("invalid"),
        "failed": counts.get("failed"),
        "expired": counts.get("expired"),
        "simulator_accepted": sim["accepted"],
        "simulator_duplicates": sim["duplicates"],
        **hook_report,
    }
    result["ok"] = (
        state.get("status") == "done"
        and counts.get("audience") == devices
        and finished == devices
        and sim["accepted"] == counts.get("delivered") == devices
        and sim["duplicates"] == 0
        and hook_report.get("ok", True)
    )
    return result


def sigterm_sender(stack: ComposeStack) -> dict[str, Any]:
    """SIGTERM (podman stop) to the APNs sender: exits 0 within the drain deadline."""
    name = stack.container("sender-apns")
    deadline = drain_deadline_s()
    started = time.monotonic()
    stack.podman("stop", "--time", str(deadline + 20), name)
    seconds = time.monotonic() - started
    exit_code = stack.inspect("sender-apns")["State"]["ExitCode"]
    logs = stack.logs("sender-apns", tail=40)
    drained = [line for line in logs.splitlines() if re.search(r"drained \S+ in", line)]
    stack.podman("start", name)
    report = {
        "sigterm_stop_seconds": round(seconds, 1),
        "sigterm_exit_code": exit_code,
        "drain_deadline_s": deadline,
        "drain_log": drained[-1].strip() if drained else None,
    }
    report["ok"] = seconds <= deadline and exit_code == 0 and bool(drained)
    return report


def restart_broker(stack: ComposeStack) -> dict[str, Any]:
    """`podman restart` of the RabbitMQ container, then its health check until it passes."""
    started = time.monotonic()
    stack.podman("restart", "--time", "30", stack.container("rabbitmq"))
    stack.wait_healthy(["rabbitmq"], timeout_s=180)
    return {"broker_restart_seconds": round(time.monotonic() - started, 1), "ok": True}


def check_prometheus(stack: ComposeStack) -> dict[str, Any]:
    """Every job of prometheus.yml has a target and every target is up."""
    (config,) = yaml.safe_load_all((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    url = f"{stack.url('HOST_PORT_PROMETHEUS')}/api/v1/targets"
    health: dict[str, list[str]] = {}

    def all_up() -> bool:
        nonlocal health
        try:
            targets = httpx.get(url, timeout=5).json()["data"]["activeTargets"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        health = {}
        for target in targets:
            health.setdefault(target["labels"]["job"], []).append(target["health"])
        return set(health) == jobs and all(h == "up" for hs in health.values() for h in hs)

    try:
        wait_for("every Prometheus target up", all_up, timeout_s=90)
        ok = True
    except ComposeError:
        ok = False
    return {"jobs": {job: health.get(job, []) for job in sorted(jobs)}, "ok": ok}


def check_containers(stack: ComposeStack) -> dict[str, Any]:
    """Non-root, read-only root filesystem, and the HEALTHCHECK per process kind."""
    report: dict[str, Any] = {}
    ok = True
    for service in APP:
        info = stack.inspect(service)
        name = stack.container(service)
        uid = stack.podman("exec", name, "id", "-u").strip()
        try:
            stack.podman("exec", name, "touch", "/probe")
            writable = True
        except ComposeError:
            writable = False
        has_check = service in ["api", *WORKERS]
        healthy = stack.healthy(service) if has_check else None
        report[service] = {
            "uid": uid,
            "read_only_rootfs": info["HostConfig"]["ReadonlyRootfs"] and not writable,
            "healthcheck": healthy,
        }
        ok = ok and uid == str(UID) and report[service]["read_only_rootfs"]
        ok = ok and healthy in (True, None)
    # The check really probes: pointed at a port nobody listens on, it fails.
    env = {"api": "PUSHFAN_API_PORT=1", "sender-fcm": "PUSHFAN_METRICS_PORT=1"}
    for service, override in env.items():
        name = stack.container(service)
        try:
            stack.podman(
                "exec", "-e", override, name, "python", "/usr/local/bin/pushfan-healthcheck"
            )
            fails = False
        except ComposeError:
            fails = True
        report[service]["healthcheck_fails_when_endpoint_down"] = fails
        ok = ok and fails
    report["ok"] = ok
    return report


def bring_up(stack: ComposeStack) -> dict[str, float]:
    """The compose file's start order, stage by stage (see loadtest/compose_stack.py)."""
    timings = {}
    started = time.monotonic()
    stack.up(INFRA)
    timings["infra_healthy_s"] = round(stack.wait_healthy(INFRA, timeout_s=240), 1)
    stack.up(ONE_SHOT)
    codes = stack.wait_exited(ONE_SHOT, timeout_s=300)
    if any(codes.values()):
        logs = {s: stack.logs(s, tail=30) for s, code in codes.items() if code}
        raise ComposeError(f"one-shot services failed: {codes} {logs}")
    # Every container is started before the checks: each start makes podman's DNS reload.
    stack.up([*APP, "prometheus"])
    api_ready = f"{stack.url('HOST_PORT_API')}/readyz"
    wait_for("the API's /readyz", lambda: answers(api_ready), timeout_s=180)
    stack.wait_healthy(WORKERS, timeout_s=180)
    timings["stack_ready_s"] = round(time.monotonic() - started, 1)
    return timings


def create_key(stack: ComposeStack) -> str:
    create = ["pushfan", "keys", "create", "--name", "compose-test", "--scope", "admin"]
    out = stack.exec("api", *create, "--owner", "compose-test", "--all-apps")
    return out.strip().splitlines()[-1]


def run(stack: ComposeStack, devices: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"devices": devices}
    summary.update(bring_up(stack))
    say(f"  stack ready in {summary['stack_ready_s']} s; creating a key, seeding {devices:,}")
    key = create_key(stack)
    started = time.monotonic()
    stack.exec("api", "pushfan", "devices", "seed", "--count", str(devices))
    summary["seed_s"] = round(time.monotonic() - started, 1)
    ca = stack.exec("api", "cat", f"{CREDENTIALS}/ca.pem")
    sims = Simulators(stack, ca)
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack.url("HOST_PORT_API"), headers=headers, timeout=30) as api:
        hooks: dict[str, Hook | None] = {
            "plain": None,
            "sigterm": sigterm_sender,
            "broker": restart_broker,
        }
        for label, hook in hooks.items():
            say(f"  alert '{label}' to {devices:,} devices")
            summary[f"alert_{label}"] = run_alert(stack, api, sims, devices, label, hook)
            say(f"    {json.dumps(summary[f'alert_{label}'])}")
    summary["prometheus"] = check_prometheus(stack)
    summary["containers"] = check_containers(stack)
    summary["grafana"] = "left out: Debian has no grafana package to build an image from"
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--compose",
        default=str(Path(sys.executable).parent / "podman-compose"),
        help="the podman-compose command",
    )
    args = parser.parse_args(argv)
    stack = ComposeStack([args.compose])
    started = time.monotonic()
    say("compose-test: taking down any previous stack")
    stack.down()
    try:
        summary = run(stack, args.devices)
    except ComposeError as exc:
        say(f"compose-test FAILED: {exc}")
        summary = {"error": str(exc)[:2000]}
    finally:
        if not args.keep:
            stack.down()
    summary["total_s"] = round(time.monotonic() - started, 1)
    checks = [v["ok"] for v in summary.values() if isinstance(v, dict) and "ok" in v]
    summary["ok"] = "error" not in summary and bool(checks) and all(checks)
    say(f"compose-test {'passed' if summary['ok'] else 'FAILED'} in {summary['total_s']} s")
    print(json.dumps(summary), flush=True)
    failed = checks.count(False) + ("error" in summary)
    print(f"compose-test: {checks.count(True)} passed, {failed} failed", flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
