"""`python -m loadtest.demo_compare REV`: `pushfan demo` of this checkout and of revision REV,
alternately (ABBA), with the same device mix; prints each run, the medians and the ratios
this / REV of pushes/s and of sender CPU per push.

Each run is `pushfan demo --json` in its own process with its tree first on `sys.path` (REV is
a detached worktree, as `pushfan bench --compare` makes it). The demo reports no CPU, so this
script reads it from outside: every 0.5 s it sums the CPU time of the demo's sender
processes (its children running `worker sender`) and keeps the last reading of each; CPU per
push is their total over the pushes finished. `--sandbox-fraction` is passed to trees whose
demo has it (issue 15 added it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadtest.compare import ROOT, Tree, _cell, _median, worktree_for
from loadtest.demo import FINAL_OUTCOMES, say
from loadtest.stack import cpu_seconds

FIGURES = ("pushes_per_s", "send_phase_pushes_per_s", "sender_cpu_us_per_push")


def _senders(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"worker\0sender" in cmdline:
            found.append(int(entry.name))
    return found


def run_demo(tree: Tree, devices: int, sandbox_fraction: float) -> dict[str, Any]:
    command = [sys.executable, "-m", tree.entry_module, "demo", "--json"]
    command += ["--devices", str(devices)]
    if "--sandbox-fraction" in (tree.path / "loadtest" / "commands.py").read_text():
        command += ["--sandbox-fraction", str(sandbox_fraction)]
    env = {**os.environ, "PYTHONPATH": str(tree.path)}
    cpu: dict[int, float] = {}
    with subprocess.Popen(
        command, cwd=tree.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as demo:
        while demo.poll() is None:
            for pid in _senders(demo.pid):
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    cpu[pid] = seconds
            time.sleep(0.5)
        out = demo.stdout.read().decode() if demo.stdout else ""
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"demo of {tree.label} printed no summary (exit {demo.returncode})")
    summary: dict[str, Any] = json.loads(lines[-1])
    finished = sum(int(summary.get(k) or 0) for k in FINAL_OUTCOMES)
    summary["sender_cpu_s"] = round(sum(cpu.values()), 2)
    summary["sender_cpu_us_per_push"] = round(sum(cpu.values()) / finished * 1e6, 1)
    return summary


def report(trees: list[Tree], runs: dict[str, list[dict[str, Any]]]) -> str:
    head = f"{'tree':32} {'run':>3} " + " ".join(f"{name:>24}" for name in FIGURES)
    lines = [head, "-" * len(head)]
    for tree in trees:
        for i, s in enumerate(runs[tree.label], 1):
            cells = " ".join(f"{_cell(s.get(name)):>24}" for name in FIGURES)
            lines.append(f"{tree.label[:32]:32} {i:>3} {cells}")
    medians = {
        t.label: {n: _median([s.get(n) for s in runs[t.label]]) for n in FIGURES} for t in trees
    }
    for tree in trees:
        cells = " ".join(f"{_cell(medians[tree.label][n]):>24}" for n in FIGURES)
        lines.append(f"{'median ' + tree.label[:25]:32} {'':>3} {cells}")
    this, other = (medians[t.label] for t in trees)
    ratios = " ".join(f"{_cell(_ratio(this[n], other[n])):>24}" for n in FIGURES)
    lines.append(f"{'ratio this / ' + trees[1].label[:19]:32} {'':>3} {ratios}")
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare with, e.g. main")
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--sandbox-fraction", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=2, help="runs of each tree")
    args = parser.parse_args(argv)
    trees = [Tree("this checkout", ROOT), worktree_for(args.rev)]
    runs: dict[str, list[dict[str, Any]]] = {t.label: [] for t in trees}
    for i in range(args.runs):
        for tree in trees if i % 2 == 0 else trees[::-1]:
            say(f"[demo-compare] run {i + 1}/{args.runs}: {tree.label}")
            summary = run_demo(tree, args.devices, args.sandbox_fraction)
            say(json.dumps({k: summary.get(k) for k in (*FIGURES, "delivered", "duplicates")}))
            runs[tree.label].append(summary)
    say("\n" + report(trees, runs))
    print(json.dumps({"devices": args.devices, "runs": runs}), flush=True)
    clean = all(
        s.get("duplicates") == 0 and s.get("counts_add_up") for r in runs.values() for s in r
    )
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
