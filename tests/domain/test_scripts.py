"""The Lua scripts in the real Redis: each compiles and is loaded at start-up."""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from pushfan import scripts


async def test_preload_loads_every_script(redis: aioredis.Redis) -> None:
    await scripts.preload(redis)
    shas = [hashlib.sha1(scripts.source(n).encode()).hexdigest() for n in scripts.names()]
    assert await redis.script_exists(*shas) == [True] * len(shas)
