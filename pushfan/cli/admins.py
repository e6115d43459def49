"""`pushfan admins create --username U [--role R]`: the password is read from a prompt (typed twice)
or, for scripts, from standard input with --password-stdin; never from an argument, which
would land in shell history and `ps`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from pushfan import admins, db
from pushfan.settings import Settings


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the passwords differ")
    return first


def run_admins(settings: Settings, args: argparse.Namespace) -> int:
    try:
        password = read_password(args.password_stdin)
        admins.check_password(password)
    except ValueError as exc:
        print(f"pushfan admins create: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        pool = await db.create_pool(settings, min_size=1, max_size=1)
        try:
            admin = await admins.create(pool, args.username, password, args.role)
        except ValueError as exc:
            print(f"pushfan admins create: {exc}", file=sys.stderr)
            return 2
        finally:
            await pool.close()
        print(f"admin {admin.username} ({admin.role}) can sign in at /admin")
        if admin.session_epoch:
            print("its earlier sessions are ended")
        return 0

    return asyncio.run(go())
