"""One global alert through real processes: simulators, API, expander, senders, with the
real RabbitMQ, Redis and PostgreSQL, over HTTP/2 with both client paths: the fast one
(default) and the original clients (aioapns, httpx), which stay selectable as the baseline."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from loadtest.stack import Stack
from tests.fixtures.alerts import wait_done

pytestmark = pytest.mark.e2e
DEVICES = 3_000
DEAD_FRACTION = 0.05


@pytest.fixture(scope="module", params=["fast", "original"])
def stack(request: pytest.FixtureRequest) -> Iterator[tuple[Stack, dict[str, str]]]:
    name = f"e2e_{secrets.token_hex(3)}"
    stack = Stack.create(
        name, apps=("alpha", "beta"), extra_env={"PUSHFAN_HTTP_CLIENT": request.param}
    )
    try:
        key = stack.prepare(DEVICES)
        stack.start_simulators(dead_fraction=DEAD_FRACTION)
        stack.start_api()
        stack.start_workers()
        yield stack, {"authorization": f"Bearer {key}"}
    finally:
        stack.stop()
        stack.cleanup()


def test_alert_reaches_every_device_once_and_dead_tokens_are_dropped(
    stack: tuple[Stack, dict[str, str]],
) -> None:
    s, headers = stack
    client = httpx.Client(base_url=s.api_url, timeout=10)
    alert = {"title": "Hello", "body": "World", "ttl": 600}
    first = client.post("/v1/alerts", json=alert, headers=headers)
    assert first.status_code == 202
    state = wait_done(client, first.json()["id"], headers)
    counts = state["counts"]
    assert counts["audience"] == DEVICES and counts["failed"] == 0
    assert counts["delivered"] + counts["invalid"] == DEVICES
    # ~5% of tokens are dead in the simulators, deterministically per token.
    assert 0.02 * DEVICES < counts["invalid"] < 0.08 * DEVICES
    apns = s.sim_stats("apns", first.json()["id"])
    fcm = s.sim_stats("fcm", first.json()["id"])
    assert int(apns["accepted"]) + int(fcm["accepted"]) == counts["delivered"]
    assert apns["duplicates"] == fcm["duplicates"] == 0
    assert int(apns["distinct_tokens"]) > 0 and int(fcm["distinct_tokens"]) > 0

    # The dead devices were deactivated: the next alert's audience leaves them out.
    second = client.post("/v1/alerts", json={**alert, "title": "Again"}, headers=headers)
    again = wait_done(client, second.json()["id"], headers)["counts"]
    assert again["audience"] == DEVICES - counts["invalid"]
    assert again["invalid"] == 0 and again["delivered"] == again["audience"]


def test_targeting_one_app_and_platform(stack: tuple[Stack, dict[str, str]]) -> None:
    s, headers = stack
    client = httpx.Client(base_url=s.api_url, timeout=10)
    body = {
        "title": "Beta iOS",
        "body": "only",
        "audience": {"apps": ["beta"], "platforms": ["ios"]},
    }
    created = client.post("/v1/alerts", json=body, headers=headers)
    state = wait_done(client, created.json()["id"], headers)
    apns = s.sim_stats("apns", created.json()["id"])
    fcm = s.sim_stats("fcm", created.json()["id"])
    assert int(fcm["accepted"]) == 0
    assert int(apns["accepted"]) == state["counts"]["delivered"] > 0
    assert state["counts"]["audience"] < DEVICES / 3


def test_demo_command_reports_an_exact_delivery() -> None:
    """The README's main command, at a small size: its JSON line says it all added up."""
    result = subprocess.run(
        [sys.executable, "-m", "pushfan.cli.main", "demo", "--devices", "2000", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["duplicates"] == 0
    assert summary["delivered"] + summary["invalid"] + summary["failed"] == summary["audience"]
    assert summary["audience"] == 2000 and summary["simulators_agree"]
    assert summary["first_push_ms"] is not None and summary["pushes_per_s"] > 0
