"""The Grafana dashboard filters pushfan_* series only by label values pushfan exports.

tests/deploy/test_dashboard.py checks the metric names; a typo in a label value
(`outcome="delivred"`) would still draw an empty panel, so this checks the values too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pushfan import metrics
from pushfan.provider import Provider

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "pushfan.json"
SELECTOR = re.compile(r"(pushfan_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|!~|=|!=)\s*"([^"]*)"')
VALUES = {
    "provider": {str(p) for p in Provider},
    "outcome": set(metrics.OUTCOMES),
    "result": set(metrics.BATCH_RESULTS),
    "status": set(metrics.STATUS_CLASSES),
}


def test_dashboard_label_values_exist() -> None:
    """Every label value a panel selects on (=, or each alternative of =~) is exported."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    checked = 0
    for expr in (t["expr"] for p in panels for t in p.get("targets", [])):
        for metric, selector in SELECTOR.findall(expr):
            for label, op, wanted in MATCHER.findall(selector):
                assert label in VALUES, f"{metric}: unknown label {label!r}"
                alternatives = wanted.split("|") if op in ("=~", "!~") else [wanted]
                unknown = set(alternatives) - VALUES[label]
                assert not unknown, f"{metric}{{{selector}}}: no series has {label}={unknown}"
                checked += 1
    assert checked, "the dashboard selects on no label at all"
