"""The ledger's stores broken mid-alert (loadtest/store_faults.py at a small population):
Redis restarted empty, Redis SIGKILLed with AOF, a Sentinel failover, Redis and PostgreSQL
unreachable, a cancel followed by a Redis restart. Each scenario starts its own Redis (or
Sentinel group, or PostgreSQL); the shared services are not touched."""

from __future__ import annotations

import json

import pytest

from loadtest import store_faults

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


@pytest.mark.parametrize(
    ("name", "devices"),
    [
        ("redis-restart", 6_000),
        ("redis-aof-kill", 6_000),
        ("sentinel-failover", 6_000),
        ("redis-outage", 4_000),
        ("postgres-outage", 4_000),
        ("cancel-redis-restart", 3_000),
    ],
)
def test_scenario(name: str, devices: int) -> None:
    result = store_faults.SCENARIOS[name](devices)
    print(json.dumps(result))
    failed = [check for check, ok in result["checks"].items() if not ok]
    assert result["lost"] == 0, result
    assert not failed, (failed, result)
    assert result["passed"]
