"""The Grafana dashboard asks for metrics that exist: pushfan's own and RabbitMQ's."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import REGISTRY

import pushfan.metrics  # noqa: F401  (registers the pushfan_* collectors)
from tests.deploy import manifests

DASHBOARD = manifests.DEPLOY / "grafana" / "dashboards" / "pushfan.json"
# What RabbitMQ's /metrics/detailed serves per family (rabbitmq_prometheus plugin docs).
RABBITMQ_FAMILIES = {
    "queue_coarse_metrics": {
        "rabbitmq_detailed_queue_messages",
        "rabbitmq_detailed_queue_messages_ready",
        "rabbitmq_detailed_queue_messages_unacked",
        "rabbitmq_detailed_queue_process_reductions_total",
    },
    "queue_consumer_count": {"rabbitmq_detailed_queue_consumers"},
}
METRIC = re.compile(r"\b((?:pushfan|rabbitmq)_[a-z0-9_]+)\b")


def exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def pushfan_series() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("pushfan_"):
            names |= {s.name for s in family.samples} | {family.name}
            if family.type == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
            if family.type == "counter":
                names.add(f"{family.name}_total")
    return names


def test_pushfan_metrics_in_the_dashboard_exist() -> None:
    """Every pushfan_* series a panel queries is exported by pushfan.metrics."""
    known = pushfan_series()
    used = {m for e in exprs() for m in METRIC.findall(e) if m.startswith("pushfan_")}
    assert used and used <= known, used - known


def test_rabbitmq_metrics_in_the_dashboard_are_scraped() -> None:
    """Every rabbitmq_* series comes from a family Prometheus scrapes from the broker."""
    scrape = manifests.load_docs(manifests.DEPLOY / "prometheus" / "prometheus.yml")[0]
    families = {
        f for job in scrape["scrape_configs"] for f in job.get("params", {}).get("family", [])
    }
    served = set().union(*(RABBITMQ_FAMILIES[f] for f in families))
    used = {m for e in exprs() for m in METRIC.findall(e) if m.startswith("rabbitmq_")}
    assert used and used <= served, used - served


def test_dashboard_has_the_panels_the_issue_asks_for() -> None:
    """Throughput by provider, error ratios, queue depth, worker count, latency percentiles."""
    joined = "\n".join(exprs())
    assert 'pushfan_pushes_total{outcome="delivered"}' in joined
    assert "rabbitmq_detailed_queue_messages{" in joined
    assert "up{job=" in joined
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le, provider) (rate(pushfan_provider" in joined
    assert re.search(r"outcome=~\"failed\|retried\".*/ clamp_min", joined)
