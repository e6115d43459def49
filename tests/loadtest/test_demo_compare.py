"""demo_compare's table: every run, the medians, and the ratio this / REV per figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.compare import Tree
from loadtest.demo_compare import _ratio, report


def test_the_table_ends_with_the_ratio_of_the_medians() -> None:
    trees = [Tree("this checkout", Path(".")), Tree("main (abc)", Path("."))]
    runs: dict[str, list[dict[str, Any]]] = {
        "this checkout": [
            {"pushes_per_s": 1100, "send_phase_pushes_per_s": 1200, "sender_cpu_us_per_push": 90},
            {"pushes_per_s": 1300, "send_phase_pushes_per_s": 1400, "sender_cpu_us_per_push": 70},
        ],
        "main (abc)": [
            {"pushes_per_s": 1000, "send_phase_pushes_per_s": 1300, "sender_cpu_us_per_push": 80},
            {"pushes_per_s": 1000, "send_phase_pushes_per_s": 1300, "sender_cpu_us_per_push": None},
        ],
    }
    last = report(trees, runs).splitlines()[-1].split()
    assert last[-3:] == ["1.2", "1", "1"]
    assert _ratio(None, 2.0) is None and _ratio(1.0, 0.0) is None
