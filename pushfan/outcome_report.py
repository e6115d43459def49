"""An alert's report from its durable record (pushfan.outcome_record): outcomes per provider
and per app, the reasons of refused pushes, when the pushes were recorded and how long after
the trigger.

It reads the rows' sizes, reasons and times, never their device ids, through a server-side
cursor. Latency is per batch: a batch's pushes count at the time their row was recorded,
just after the provider's last answer for the batch. Pushes sent twice (see
pushfan.outcome_query) count in every row that holds them; `recorded` minus the alert's
audience says how many there were.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pushfan.outcome_query import batch_parts
from pushfan.outcome_record import OUTCOME_FIELDS, Executor

UNSENT = "-"  # the provider and app of what the expander counted without a batch


@dataclass
class Report:
    recorded: int = 0
    by_provider: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_app: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reasons: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    first_at: datetime | None = None
    last_at: datetime | None = None
    latency_ms: dict[str, float | None] = field(default_factory=dict)  # p50, p99, max

    def doc(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "by_provider": {k: dict(v) for k, v in sorted(self.by_provider.items())},
            "by_app": {k: dict(v) for k, v in sorted(self.by_app.items())},
            "reasons": {k: dict(v.most_common()) for k, v in sorted(self.reasons.items())},
            "first_recorded_at": self.first_at.isoformat() if self.first_at else None,
            "last_recorded_at": self.last_at.isoformat() if self.last_at else None,
            "latency_ms": self.latency_ms,
        }


async def build(conn: Executor, alert_id: uuid.UUID, triggered_at: datetime) -> Report:
    """The report of the alert; `conn` is one connection inside a transaction."""
    report = Report()
    delivered_at: list[tuple[float, int]] = []  # (ms after the trigger, delivered pushes)
    async for row in conn.cursor(
        "SELECT batch_id, sizes, reasons, reason_names, recorded_at "
        "FROM outcome_batches WHERE alert_id = $1 ORDER BY id",
        alert_id,
        prefetch=200,
    ):
        sizes: list[int] = row["sizes"]
        if not sum(sizes):
            continue  # a row of retried pushes only
        _, provider, app = batch_parts(row["batch_id"])
        at: datetime = row["recorded_at"]
        report.recorded += sum(sizes)
        for name, size in zip(OUTCOME_FIELDS, sizes, strict=False):
            if size:
                report.by_provider[provider or UNSENT][name] += size
                report.by_app[app or UNSENT][name] += size
        if sizes[0]:
            delivered_at.append(((at - triggered_at).total_seconds() * 1000, sizes[0]))
        report.first_at = at if report.first_at is None else min(report.first_at, at)
        report.last_at = at if report.last_at is None else max(report.last_at, at)
        if row["reasons"] is not None:
            _count_reasons(report, sizes, row["reasons"], row["reason_names"])
    report.latency_ms = latency_percentiles(delivered_at)
    return report


def _count_reasons(report: Report, sizes: list[int], reasons: bytes, names: list[str]) -> None:
    start = 0
    for outcome, size in zip(OUTCOME_FIELDS, sizes, strict=False):
        for code, count in Counter(reasons[start : start + size]).items():
            if code:
                report.reasons[outcome][names[code - 1]] += count
        start += size


def latency_percentiles(weighted: list[tuple[float, int]]) -> dict[str, float | None]:
    """p50, p99 and max of values each counted `weight` times."""
    total = sum(w for _, w in weighted)
    if not total:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(weighted)
    out: dict[str, float | None] = {"max": round(ordered[-1][0], 1)}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        rank, seen = q * total, 0
        for value, weight in ordered:
            seen += weight
            if seen >= rank:
                out[name] = round(value, 1)
                break
    return out
