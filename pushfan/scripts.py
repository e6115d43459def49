"""Redis Lua scripts: one `.lua` file per script in pushfan/lua/, loaded once per process.

Each script file starts with a header naming its KEYS and ARGV and what it returns. Lua
functions that several scripts use live in files named `_<name>.lua`, never run alone; a
script takes one in with a line `-- #include _<name>`, which `source()` replaces by that
file's text (includes may include; each file goes in once per script, at its first include).
So each rule is written once (the ledger's per-batch scripts are the dedup, counter and
rate-limit functions composed), and Redis still gets one self-contained script. Line numbers
in a Redis script error refer to the expanded text, which `source(name)` returns.

`register(redis, name)` gives a redis-py script object: EVALSHA, and on NOSCRIPT (a
restarted or flushed Redis) SCRIPT LOAD and EVALSHA again. `preload(redis)` loads every
script at start-up, so the first batch does not pay that extra round trip.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

_INCLUDE = re.compile(r"--\s*#include\s+(_[a-z0-9_]+)")


def _read(name: str) -> str:
    return (resources.files("pushfan") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def _expand(name: str, included: set[str]) -> list[str]:
    lines: list[str] = []
    for line in _read(name).splitlines():
        match = _INCLUDE.fullmatch(line.strip())
        if match is None:
            lines.append(line)
        elif match[1] not in included:
            included.add(match[1])
            lines += _expand(match[1], included)
    return lines


@functools.cache
def source(name: str) -> str:
    """The text Redis runs for script `name`: its file with every include expanded."""
    return "\n".join(_expand(name, {name})) + "\n"


def names() -> list[str]:
    """Every script (not the `_` shared files), by name."""
    folder = resources.files("pushfan") / "lua"
    return sorted(
        entry.name.removesuffix(".lua")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("_")
    )


def register(redis: aioredis.Redis, name: str) -> AsyncScript:
    return redis.register_script(source(name))


async def preload(redis: aioredis.Redis) -> None:
    """SCRIPT LOAD every script once, at a process's start-up."""
    for name in names():
        await redis.script_load(source(name))
