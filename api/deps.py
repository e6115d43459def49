"""FastAPI dependencies: the resources opened in the lifespan, and who is calling."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request, status

from pushfan import apikeys
from pushfan.caller_rate import CallerRateLimiter
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.sessions import Sessions
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from pushfan.trigger import Trigger


@dataclass
class ApiResources:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    publisher: Publisher
    progress: Progress
    queues: QueueNames
    trigger: Trigger
    trigger_limiter: CallerRateLimiter
    login_limiter: CallerRateLimiter
    sessions: Sessions
    key_cache: apikeys.KeyCache = field(default_factory=apikeys.KeyCache)


async def resources(request: Request) -> ApiResources:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread
    # hop on every request just to read app.state.
    res: ApiResources = request.app.state.resources
    return res


Res = Annotated[ApiResources, Depends(resources)]


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
        # Cached for apikeys.CACHE_TTL_S: a revocation takes effect within 5 s.
        key = await res.key_cache.authenticate(res.pool, presented.strip())
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

    check.scope = scope  # type: ignore[attr-defined]  # read by the auth-matrix test
    return check


def require_trigger(scope: str) -> Callable[..., Awaitable[apikeys.ApiKey]]:
    """`require(scope)`, then the per-key rate limit of the REST triggers (429)."""
    authorize = require(scope)

    async def check(request: Request, res: Res) -> apikeys.ApiKey:
        key = await authorize(request, res)
        decision = await res.trigger_limiter.hit(f"key:{key.id}")
        if not decision.allowed:
            retry_after = max(1, math.ceil(decision.retry_after_s))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit of this API key reached; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        return key

    check.scope = scope  # type: ignore[attr-defined]
    return check
