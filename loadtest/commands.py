"""The harness's `pushfan` subcommands (`demo`, `simulate`, `bench`), registered through the
entry-point group `pushfan.commands` (see `pushfan.cli.main`). Each `register_*` adds one
parser; its `func` takes `(settings, args)` and returns the exit code."""

from __future__ import annotations

import argparse

from pushfan.settings import Settings

Subparsers = argparse._SubParsersAction  # argparse exposes no public name for it


def _simulate(_settings: Settings, args: argparse.Namespace) -> int:
    from loadtest.simulators.cli import main as simulate

    return simulate(args.rest)


def _demo(_settings: Settings, args: argparse.Namespace) -> int:
    from loadtest.demo import run_demo

    return run_demo(args)


def _bench(_settings: Settings, args: argparse.Namespace) -> int:
    from loadtest.bench import run_bench

    return run_bench(args)


def register_simulate(sub: Subparsers[argparse.ArgumentParser]) -> None:
    simulate = sub.add_parser(
        "simulate", help="run an APNs, FCM or Web Push simulator", add_help=False
    )
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=_simulate)


def register_demo(sub: Subparsers[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="end-to-end demo: one global alert to seeded devices")
    demo.add_argument("--devices", type=int, default=1_000_000)
    demo.add_argument("--ios-fraction", type=float, default=0.5)
    demo.add_argument(
        "--web-fraction",
        type=float,
        default=0.0,
        help="share of browsers (Web Push, decrypted by the simulator); the rest are phones",
    )
    demo.add_argument(
        "--sandbox-fraction",
        type=float,
        default=0.1,
        help="iOS devices registered on the APNs sandbox (development builds)",
    )
    demo.add_argument("--senders", type=int, default=1, help="sender processes per provider")
    demo.add_argument("--dead-fraction", type=float, default=0.001)
    demo.add_argument("--json", action="store_true", help="end with one JSON summary line")
    demo.add_argument("--keep-schema", action="store_true", help="keep the demo's data")
    demo.set_defaults(func=_demo)


def register_bench(sub: Subparsers[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="end-to-end benchmark against the baselines")
    bench.add_argument("--devices", type=int, default=1_000_000)
    bench.add_argument("--baseline-devices", type=int, default=100_000)
    bench.add_argument("--dead-fraction", type=float, default=0.001)
    bench.add_argument("--skip-baselines", action="store_true")
    bench.add_argument(
        "--web-fraction",
        type=float,
        default=0.0,
        help="share of browsers in the pushfan variant; CPU per push is then also per provider",
    )
    bench.add_argument(
        "--message",
        choices=("plain", "rich", "silent", "data_only", "overrides"),
        default="plain",
        help="the alert sent: the bench's plain one, or an OpenAPI example of that kind",
    )
    bench.add_argument("--json", action="store_true", help="end with one JSON summary line")
    bench.add_argument(
        "--compare", metavar="REV", help="run this checkout and git revision REV alternately"
    )
    bench.add_argument("--runs", type=int, default=3, help="with --compare: runs of each tree")
    bench.set_defaults(func=_bench)
