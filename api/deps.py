"""FastAPI dependencies: the resources opened in the lifespan, and who is calling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request, status

from pushfan import apikeys
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.topology import QueueNames


@dataclass
class Resources:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    publisher: Publisher
    progress: Progress
    queues: QueueNames


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


Res = Annotated[Resources, Depends(resources)]


def require(scope: str) -> Callable[..., Awaitable[apikeys.ApiKey]]:
    """A dependency that admits only a live API key holding `scope` (or `admin`)."""

    async def check(request: Request, res: Res) -> apikeys.ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = await apikeys.authenticate(res.pool, presented.strip())
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if key.revoked:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key was revoked")
        if not key.allows(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks scope {scope!r}")
        return key

    return check
