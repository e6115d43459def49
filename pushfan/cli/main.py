"""The `pushfan` command: the composition root that starts either edge and runs the
operator's tools (migrations, keys, admins, seeding). Settings are built here, once per
process.

Other distributions add subcommands through the entry-point group `pushfan.commands`: each
entry point is a `register(subparsers)` callable that adds its parser and sets `func` to a
`(settings, args) -> int` callable. The development harness (`loadtest`) adds `demo`,
`simulate` and `bench` this way, so the product never imports the harness."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from importlib.metadata import entry_points

from pushfan.provider import Provider
from pushfan.settings import Settings


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def _cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from pushfan import db

    applied = asyncio.run(db.migrate(settings))
    print(f"schema {settings.database_schema}: {len(applied)} migration(s) applied")
    return 0


def _cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from pushfan.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.drain_deadline_s),
    )
    return 0


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from pushfan.workers.main import run

    if args.kind == "sender" and args.provider is None:
        print("pushfan worker sender: --provider apns|fcm|web is required", file=sys.stderr)
        return 2
    run(args.kind, settings, args.provider)
    return 0


def _cmd_devices(settings: Settings, args: argparse.Namespace) -> int:
    from pushfan.cli.devices import deactivate_stale, seed

    if args.devices_command == "deactivate-stale":
        return deactivate_stale(settings, args.batch)
    return seed(settings, args.count, args.ios_fraction, args.apps)


def _cmd_outcomes(settings: Settings, args: argparse.Namespace) -> int:
    from pushfan.cli.outcomes import prune

    return prune(settings, args.batch)


def _cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from pushfan.cli.keys import run_keys

    return run_keys(settings, args)


def _cmd_admins(settings: Settings, args: argparse.Namespace) -> int:
    from pushfan.cli.admins import run_admins

    return run_admins(settings, args)


PLUGIN_GROUP = "pushfan.commands"


def _add_plugin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pushfan", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_cmd_migrate)

    api = sub.add_parser("api", help="run the REST API")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.set_defaults(func=_cmd_api)

    worker = sub.add_parser("worker", help="run a worker")
    worker.add_argument("kind", choices=["expander", "sender", "feedback"])
    worker.add_argument("--provider", choices=list(Provider))
    worker.set_defaults(func=_cmd_worker)

    devices = sub.add_parser("devices", help="device registry tools")
    devices_sub = devices.add_subparsers(dest="devices_command", required=True)
    seed = devices_sub.add_parser("seed", help="bulk-load synthetic devices (COPY)")
    seed.add_argument("--count", type=int, required=True)
    seed.add_argument("--ios-fraction", type=float, default=0.5)
    seed.add_argument("--apps", nargs="+", help="apps to spread devices over (default: all)")
    seed.set_defaults(func=_cmd_devices)
    stale = devices_sub.add_parser(
        "deactivate-stale",
        help="deactivate devices unseen for PUSHFAN_DEVICE_STALE_DAYS, in batches (cron it)",
    )
    stale.add_argument("--batch", type=int, default=1_000, help="rows per transaction")
    stale.set_defaults(func=_cmd_devices)

    outcomes = sub.add_parser("outcomes", help="the per-device outcome record")
    outcomes_sub = outcomes.add_subparsers(dest="outcomes_command", required=True)
    prune = outcomes_sub.add_parser(
        "prune",
        help="delete outcomes of alerts finished over PUSHFAN_OUTCOME_RETENTION_DAYS ago, "
        "in batches (cron it)",
    )
    prune.add_argument("--batch", type=int, default=1_000, help="rows per statement")
    prune.set_defaults(func=_cmd_outcomes)

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", required=True, dest="scopes")
    create.add_argument("--owner", required=True, help="the team or service the key belongs to")
    bound = create.add_mutually_exclusive_group(required=True)
    bound.add_argument(
        "--app", action="append", dest="apps", help="an app the key is bound to (repeatable)"
    )
    bound.add_argument("--all-apps", action="store_true", help="bind the key to every app")
    create.add_argument("--expires-in", type=float, metavar="DAYS", help="expire after DAYS")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys_sub.add_parser("list", help="list keys (never their secrets)")
    keys.set_defaults(func=_cmd_keys)

    admins = sub.add_parser("admins", help="dashboard admins")
    admins_sub = admins.add_subparsers(dest="admins_command", required=True)
    admin_create = admins_sub.add_parser(
        "create", help="add an admin, or reset one (password, role; ends its sessions)"
    )
    admin_create.add_argument("--username", required=True)
    admin_create.add_argument(
        "--role",
        choices=["viewer", "sender", "admin"],
        help="new admins: viewer unless named; existing ones keep theirs unless named",
    )
    admin_create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    admins.set_defaults(func=_cmd_admins)

    _add_plugin_commands(sub)
    return parser


def _unreachable(exc: OSError) -> str:
    """One line for a store or service that could not be reached (no traceback: the
    operator needs the address's fate, not the call stack)."""
    if isinstance(exc, TimeoutError):
        return "a service did not answer in time (is the host name resolvable and reachable?)"
    return f"a service could not be reached: {exc.__class__.__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    _setup_logging(settings)
    try:
        return int(args.func(settings, args) or 0)
    except OSError as exc:
        print(f"pushfan {args.command}: {_unreachable(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
