"""A short `make loadtest` inside `make test`: Locust (a subprocess: gevent stays out of
pytest) against a whole local stack for 10 s at a few users. The error gate is the real one
(0.1%: any failed or mis-shaped answer fails it); the p95 gate is lenient because this box
runs everything, other test processes included, and 10 s at 20 requests/s says nothing about
latency. `make loadtest` is the measurement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.loadtest]

ENDPOINTS = {
    "POST /v1/devices",
    "POST /v1/alerts",
    "GET /v1/alerts/{id}",
    "POST /v1/notifications",
    "GET /v1/notifications/{id}",
    "Aggregated",
}


def test_locust_smoke_run_passes_the_slo_gate(tmp_path: Path) -> None:
    """Every endpoint is exercised, nothing fails, the CSV and HTML reports are written, and
    every alert triggered is then finished by the workers."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.run_locust",
            *("--duration", "10", "--users", "5", "--spawn-rate", "5", "--user-rate", "4"),
            *("--devices", "500", "--p95-ms", "2000", "--max-error-ratio", "0.001"),
            *("--out", str(tmp_path), "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["passed"] and not summary["problems"]
    seen = {e["name"]: e for e in summary["endpoints"]}
    assert set(seen) == ENDPOINTS, result.stdout
    assert all(e["requests"] > 0 and e["failures"] == 0 for e in seen.values()), seen
    assert list(tmp_path.glob("locust-*_stats.csv")) and list(tmp_path.glob("locust-*.html"))
    # The workers finished every alert and notification the users triggered.
    backlog = summary["backlog"]
    assert backlog["alerts"] > 0 and backlog["unfinished"] == 0, backlog
