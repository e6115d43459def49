"""`pushfan bench --compare REV`: this checkout against another revision, side by side.

The machine is shared and noisy, so an absolute rate means little; a ratio measured in one
sitting does. REV is checked out as a detached git worktree under `.pushfan/compare/`, and
the two trees run `pushfan bench --skip-baselines --json` alternately (this, REV, this,
REV, ...), each in its own process with its own tree first on `sys.path` and the same
virtualenv. The table lists every run, then the medians and the ratio this / REV of each
figure. Revisions from before the product moved under `pushfan.cli` run as `cli.main`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.demo import say

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {  # name in the table -> how to read it from a bench JSON summary
    "pushes/s": lambda s: s.get("pushes_per_s"),
    "sender µs/push": lambda s: s.get("sender_cpu_us_per_push"),
    "expander µs/push": lambda s: (s.get("cpu_us_per_push") or {}).get("expander"),
    "first push ms": lambda s: s.get("first_push_ms"),
    "p10/median per s": lambda s: s.get("steadiness"),
}


@dataclass(frozen=True)
class Tree:
    label: str
    path: Path

    @property
    def entry_module(self) -> str:
        modern = (self.path / "pushfan" / "cli" / "main.py").exists()
        return "pushfan.cli.main" if modern else "cli.main"


def worktree_for(rev: str) -> Tree:
    """A detached worktree of `rev` (reused when it exists at the same commit)."""
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = ROOT / ".pushfan" / "compare" / sha[:12]
    if not (path / ".git").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", "--force", str(path), sha)
    return Tree(f"{rev} ({sha[:9]})", path)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def run_once(tree: Tree, devices: int, dead_fraction: float) -> dict[str, Any]:
    """One `bench --skip-baselines --json` of `tree`; its JSON summary."""
    env = {**os.environ, "PYTHONPATH": str(tree.path)}
    command = [sys.executable, "-m", tree.entry_module, "bench", "--skip-baselines", "--json"]
    command += ["--devices", str(devices), "--dead-fraction", str(dead_fraction)]
    done = subprocess.run(command, cwd=tree.path, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(
            f"bench of {tree.label} printed no summary (exit {done.returncode})\n{tail}"
        )
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def table(trees: list[Tree], runs: dict[str, list[dict[str, Any]]]) -> str:
    head = f"{'tree':32} {'run':>3} " + " ".join(f"{name:>17}" for name in FIGURES)
    lines = [head, "-" * len(head)]
    for tree in trees:
        for i, summary in enumerate(runs[tree.label], 1):
            cells = " ".join(f"{_cell(get(summary)):>17}" for get in FIGURES.values())
            lines.append(f"{tree.label[:32]:32} {i:>3} {cells}")
    medians = {
        t.label: {n: _median([get(s) for s in runs[t.label]]) for n, get in FIGURES.items()}
        for t in trees
    }
    for tree in trees:
        cells = " ".join(f"{_cell(medians[tree.label][n]):>17}" for n in FIGURES)
        lines.append(f"{'median ' + tree.label[:25]:32} {'':>3} {cells}")
    this, other = trees
    ratios = []
    for name in FIGURES:
        a, b = medians[this.label][name], medians[other.label][name]
        ratios.append(f"{_cell(round(a / b, 3) if a is not None and b else None):>17}")
    lines.append(f"{'ratio this / ' + other.label[:19]:32} {'':>3} " + " ".join(ratios))
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"


def run_compare(args: argparse.Namespace) -> int:
    trees = [Tree("this checkout", ROOT), worktree_for(args.compare)]
    runs: dict[str, list[dict[str, Any]]] = {t.label: [] for t in trees}
    for i in range(args.runs):
        for tree in trees if i % 2 == 0 else trees[::-1]:  # ABBA: drift hits both alike
            say(f"[compare] run {i + 1}/{args.runs}: {tree.label}")
            runs[tree.label].append(run_once(tree, args.devices, args.dead_fraction))
    report = table(trees, runs)
    say("\n" + report)
    if args.json:
        print(json.dumps({"devices": args.devices, "runs": runs}), flush=True)
    clean = all(s.get("duplicates") == 0 and s.get("lost") == 0 for r in runs.values() for s in r)
    return 0 if clean else 1
