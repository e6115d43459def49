"""`pushfan keys create|revoke|list`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from pushfan import apikeys, db
from pushfan.settings import Settings


def _line(key: apikeys.ApiKey) -> str:
    if key.revoked_at:
        state = f"revoked {key.revoked_at:%Y-%m-%d}"
    elif key.expires_at:
        state = f"{'expired' if key.expired() else 'expires'} {key.expires_at:%Y-%m-%d %H:%M}"
    else:
        state = "live"
    scopes, apps = ",".join(key.scopes), ",".join(key.apps)
    return f"{key.id}  {key.name:20}  {key.owner:16}  {apps:24}  {scopes:40}  {state}"


async def _create(pool: db.Pool, settings: Settings, args: argparse.Namespace) -> int:
    apps = ["*"] if args.all_apps else args.apps
    unknown = sorted(set(apps) - {"*", *settings.app_names})
    if unknown:
        print(f"pushfan keys create: unknown app(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    expires_in = None if args.expires_in is None else timedelta(days=args.expires_in)
    try:
        key, plaintext = await apikeys.create(
            pool, args.name, args.scopes, owner=args.owner, apps=apps, expires_in=expires_in
        )
    except ValueError as exc:
        print(f"pushfan keys create: {exc}", file=sys.stderr)
        return 2
    print(
        f"created key {key.id} for {key.owner} ({', '.join(key.scopes)}; apps "
        f"{', '.join(key.apps)}); it is shown only once:"
    )
    print(plaintext)
    return 0


def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    async def go() -> int:
        pool = await db.create_pool(settings, min_size=1, max_size=1)
        try:
            if args.keys_command == "create":
                return await _create(pool, settings, args)
            elif args.keys_command == "revoke":
                if not await apikeys.revoke(pool, args.key_id):
                    print(f"no live key {args.key_id}")
                    return 1
                print(f"revoked {args.key_id}")
            else:
                for key in await apikeys.list_keys(pool):
                    print(_line(key))
            return 0
        finally:
            await pool.close()

    return asyncio.run(go())
