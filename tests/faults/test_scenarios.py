"""Fault injection against the real services and the simulators: the scenarios of
loadtest/faults.py at a small population (the full-size runs are `python loadtest/faults.py`).

Each scenario breaks something (provider 5xx and 429 storms, SIGKILLed senders, a RabbitMQ
restart with and without kills, a provider quota, paused senders, a cancel, a SIGTERM, a
retried trigger; browsers beside phones under the storms, and web senders SIGKILLed mid web
batch) and ends with the simulators' statistics compared with pushfan's counts."""

from __future__ import annotations

import json

import pytest

from loadtest import faults

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


@pytest.mark.parametrize(
    ("name", "devices"),
    [
        ("errors", 4_000),
        ("kills", 6_000),
        ("restart", 6_000),
        ("quota", 4_000),
        ("expiry", 1_000),
        ("cancel", 3_000),
        ("sigterm", 3_000),
        ("idempotency", 1_000),
        ("web-errors", 2_000),
        ("web-kills", 3_000),
    ],
)
def test_scenario(name: str, devices: int) -> None:
    result = faults.SCENARIOS[name](devices)
    print(json.dumps(result))
    failed = [check for check, ok in result["checks"].items() if not ok]
    assert result["lost"] == 0, result
    assert not failed, (failed, result)
    assert result["passed"]
