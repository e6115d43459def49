"""The /metrics of a running API and of running workers (real processes, cli.stack): every
pushfan_* series exists at 0 before any traffic, labels stay bounded, and one small alert
moves the delivery counters and the latency histograms."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.stack import Stack, free_port
from pushfan import metrics
from pushfan.provider import Provider

pytestmark = pytest.mark.e2e
DEVICES = 200

# (sample name, labels) -> value, e.g. (pushfan_pushes_total, {provider, outcome}) -> 3.
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Series:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    series: Series = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("pushfan_"):
            for s in family.samples:
                if not s.name.endswith("_created"):  # a timestamp, not a value
                    series[(s.name, frozenset(s.labels.items()))] = s.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, frozenset(labels.items()))]


def worker_series() -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """The series every process pre-creates (labels only; histograms by their _count)."""
    expected: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    for provider in Provider:
        p = frozenset({("provider", provider)})
        for outcome in metrics.OUTCOMES:
            expected.add(("pushfan_pushes_total", p | {("outcome", outcome)}))
        for result in metrics.BATCH_RESULTS:
            expected.add(("pushfan_batches_total", p | {("result", result)}))
        for hist in ("provider_request_seconds", "batch_seconds", "rate_limit_wait_seconds"):
            expected.add((f"pushfan_{hist}_count", p))
        expected.add(("pushfan_pushes_in_flight", p))
    for counter in ("expanded_targets", "expanded_shards", "alerts_created", "planned_shards"):
        expected.add((f"pushfan_{counter}_total", frozenset()))
    return expected


@dataclass
class Running:
    stack: Stack
    headers: dict[str, str]
    workers: dict[str, str]  # name -> metrics URL
    api_before: Series
    workers_before: dict[str, Series]


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    name = f"m_{secrets.token_hex(3)}"
    stack = Stack.create(name, web=True)
    try:
        key = stack.prepare(DEVICES, web_fraction=0.25)
        stack.start_simulators()
        stack.start_api()
        workers: dict[str, str] = {}
        kinds = {
            "expander": ["worker", "expander"],
            "sender-apns": ["worker", "sender", "--provider", "apns"],
            "sender-fcm": ["worker", "sender", "--provider", "fcm"],
            "sender-web": ["worker", "sender", "--provider", "web"],
        }
        for kind, args in kinds.items():
            port = free_port()
            child = stack.spawn(kind, args, env={"PUSHFAN_METRICS_PORT": str(port)})
            stack.wait_for_log(child, "consuming")
            workers[kind] = f"http://127.0.0.1:{port}"
        # Scraped here, before any test sends anything.
        yield Running(
            stack,
            {"authorization": f"Bearer {key}"},
            workers,
            scrape(stack.api_url),
            {kind: scrape(url) for kind, url in workers.items()},
        )
    finally:
        stack.stop()
        stack.cleanup()


def test_api_exports_every_series_at_zero_before_traffic(running: Running) -> None:
    """The API pre-creates the shared series and one latency series per route and method."""
    series = running.api_before
    assert worker_series() <= set(series), worker_series() - set(series)
    for route, method in (("/v1/alerts", "POST"), ("/v1/alerts/{alert_id}", "GET")):
        for status in metrics.STATUS_CLASSES:
            labels = {"route": route, "method": method, "status": status}
            assert value(series, "pushfan_api_request_seconds_count", **labels) == 0
    # Only the start-up probe of /healthz has been served.
    moved = {k for k, v in series.items() if v and ("route", "/healthz") not in k[1]}
    assert not moved, moved


@pytest.mark.parametrize("kind", ["expander", "sender-apns", "sender-fcm", "sender-web"])
def test_worker_exports_every_series_at_zero_before_traffic(running: Running, kind: str) -> None:
    """Each worker's /metrics has every pushfan_* series, all at 0, before any batch."""
    series = running.workers_before[kind]
    assert worker_series() <= set(series), worker_series() - set(series)
    assert not {k for k, v in series.items() if v}


def test_labels_are_bounded(running: Running) -> None:
    """Label names and values come from fixed sets: no ids, tokens or raw paths."""
    client = httpx.Client(base_url=running.stack.api_url, timeout=10)
    client.get(f"/v1/alerts/{secrets.token_hex(8)}", headers=running.headers)  # 404
    client.get(f"/no/such/{secrets.token_hex(8)}")
    routes = {"unmatched"} | {
        dict(labels)["route"]
        for name, labels in running.api_before
        if name.startswith("pushfan_api_request_seconds")
    }
    allowed = {
        "provider": {str(p) for p in Provider},
        "outcome": set(metrics.OUTCOMES),
        "result": set(metrics.BATCH_RESULTS),
        "status": {"1xx", "2xx", "3xx", "4xx", "5xx"},
        "method": set(metrics.HTTP_METHODS) | {"other"},
        "route": routes,
        "le": None,  # histogram buckets: fixed by the metric's definition
    }
    scrapes = [scrape(running.stack.api_url), *(scrape(u) for u in running.workers.values())]
    for series in scrapes:
        for name, labels in series:
            for label, val in labels:
                assert label in allowed, (name, label)
                values = allowed[label]
                assert values is None or val in values, (name, label, val)
    assert ("route", "unmatched") in {kv for _, labels in scrapes[0] for kv in labels}


@pytest.fixture(scope="module")
def alert_counts(running: Running) -> dict[str, int]:
    """One alert to every device, followed to `done`; its counts."""
    client = httpx.Client(base_url=running.stack.api_url, timeout=10)
    created = client.post(
        "/v1/alerts", json={"title": "Metrics", "body": "check"}, headers=running.headers
    )
    assert created.status_code == 202, created.text
    alert_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        state = client.get(f"/v1/alerts/{alert_id}", headers=running.headers).json()
        if state["status"] == "done":
            counts: dict[str, int] = state["counts"]
            return counts
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def test_one_alert_moves_delivery_counters_and_histograms(
    running: Running, alert_counts: dict[str, int]
) -> None:
    """After one alert to every device: delivered counters equal the alert's count, provider
    latency, batch time and rate-limit wait histograms observed, expansion counted, nothing
    left in flight."""
    api = scrape(running.stack.api_url)
    assert value(api, "pushfan_alerts_created_total") == 1
    posted = {"route": "/v1/alerts", "method": "POST", "status": "2xx"}
    assert value(api, "pushfan_api_request_seconds_count", **posted) == 1

    expander = scrape(running.workers["expander"])
    assert value(expander, "pushfan_expanded_targets_total") == alert_counts["audience"]
    assert alert_counts["audience"] == DEVICES
    assert value(expander, "pushfan_expanded_shards_total") >= 1

    delivered = 0.0
    for provider in Provider:
        sender = scrape(running.workers[f"sender-{provider}"])
        p = {"provider": provider}
        delivered += value(sender, "pushfan_pushes_total", outcome="delivered", **p)
        sent = sum(
            value(sender, "pushfan_pushes_total", outcome=o, **p)
            for o in ("delivered", "invalid", "failed", "retried")
        )
        # The fast providers time one push in LATENCY_SAMPLE (a histogram update per push
        # costs more than the push); the original ones time every push.
        assert 0 < value(sender, "pushfan_provider_request_seconds_count", **p) <= sent
        assert value(sender, "pushfan_batch_seconds_count", **p) >= 1
        assert value(sender, "pushfan_rate_limit_wait_seconds_count", **p) >= 1
        assert value(sender, "pushfan_pushes_in_flight", **p) == 0
    assert delivered == alert_counts["delivered"] > 0


# Metrics the dashboard reads from one process kind: metric -> the process that records it.
RECORDED_BY = {
    "pushfan_batches_total": "sender-apns",
    "pushfan_planned_shards_total": "expander",
}


@pytest.mark.parametrize("metric", list(RECORDED_BY))
def test_dashboard_metrics_are_recorded(
    running: Running, alert_counts: dict[str, int], metric: str
) -> None:
    """After the alert, the metric has moved in the process that should record it."""
    series = scrape(running.workers[RECORDED_BY[metric]])
    assert sum(v for (name, _), v in series.items() if name == metric) > 0
