"""`pushfan keys create|revoke|list`."""

from __future__ import annotations

import argparse
import asyncio

from pushfan import apikeys, db
from pushfan.settings import Settings


def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    async def go() -> int:
        pool = await db.create_pool(settings, min_size=1, max_size=1)
        try:
            if args.keys_command == "create":
                key, plaintext = await apikeys.create(pool, args.name, args.scopes)
                print(f"created key {key.id} ({', '.join(key.scopes)}); it is shown only once:")
                print(plaintext)
            elif args.keys_command == "revoke":
                if not await apikeys.revoke(pool, args.key_id):
                    print(f"no live key {args.key_id}")
                    return 1
                print(f"revoked {args.key_id}")
            else:
                for key in await apikeys.list_keys(pool):
                    state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
                    print(f"{key.id}  {key.name:20}  {','.join(key.scopes):40}  {state}")
            return 0
        finally:
            await pool.close()

    return asyncio.run(go())
