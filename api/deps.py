"""FastAPI dependencies: the resources opened in the lifespan, and who is calling.

`authenticate` is the one place an API key is looked up; `require(scope)` adds the scope
check, `require_write` / `require_trigger` the abuse limits of the write routes: per client
address before the key is looked up (so a flood of bad keys is refused by Redis, not by the
database), then per API key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request, status

from pushfan import apikeys
from pushfan.api.routing import before_body
from pushfan.caller_rate import CallerRateLimiter, Decision
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.sessions import Sessions
from pushfan.settings import Settings
from pushfan.signin import SignInGuard
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
    write_limiter: CallerRateLimiter
    address_limiter: CallerRateLimiter
    receipt_limiter: CallerRateLimiter
    signin: SignInGuard
    sessions: Sessions
    key_cache: apikeys.KeyCache = field(default_factory=apikeys.KeyCache)


async def resources(request: Request) -> ApiResources:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread
    # hop on every request just to read app.state.
    res: ApiResources = request.app.state.resources
    return res


Res = Annotated[ApiResources, Depends(resources)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def too_many(decision: Decision, whose: str) -> HTTPException:
    retry_after = max(1, math.ceil(decision.retry_after_s))
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"rate limit of this {whose} reached; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


# What a presented key must look like before it is looked up: `pf_<hex id>_<urlsafe secret>`.
_KEY_SHAPE = re.compile(r"pf_[0-9a-f]{1,32}_[A-Za-z0-9_-]{1,128}")


async def authenticate(request: Request, scope: str) -> apikeys.ApiKey:
    """The live API key of `Authorization: Bearer <key>` holding `scope` (or `admin`).

    Raises HTTPException: 401 without a key, with one that matches none, or with an expired
    one; 403 for a revoked key or one lacking the scope. It reads only the headers.
    """
    res: ApiResources = request.app.state.resources
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = None
    if _KEY_SHAPE.fullmatch(presented):  # a malformed key is never looked up
        # Cached, unknown ids too (apikeys.KeyCache): a revocation takes effect within 5 s.
        key = await res.key_cache.authenticate(res.pool, presented)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if key.revoked:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key was revoked")
    if key.expired():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this API key expired",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if not key.allows(scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this API key lacks scope {scope!r}")
    return key


def require(scope: str) -> Callable[[Request], Awaitable[apikeys.ApiKey]]:
    """A dependency that admits only a live API key holding `scope` (or `admin`)."""

    async def check(request: Request) -> apikeys.ApiKey:
        return await authenticate(request, scope)

    # Before the body is read, once a request (pushfan.api.routing).
    gate = before_body(check, f"api-key:{scope}")
    gate.scope = scope  # type: ignore[attr-defined]  # read by the auth-matrix test
    return gate


def _limited(
    scope: str, per_key: Callable[[ApiResources], CallerRateLimiter], kind: str
) -> Callable[[Request], Awaitable[apikeys.ApiKey]]:
    async def check(request: Request) -> apikeys.ApiKey:
        res: ApiResources = request.app.state.resources
        decision = await res.address_limiter.hit(f"address:{client_address(request)}")
        if not decision.allowed:
            raise too_many(decision, "client address")
        key = await authenticate(request, scope)
        decision = await per_key(res).hit(f"key:{key.id}")
        if not decision.allowed:
            raise too_many(decision, "API key")
        return key

    # Before the body is read, once a request (pushfan.api.routing): one hit per limit.
    gate = before_body(check, f"{kind}:{scope}")
    gate.scope = scope  # type: ignore[attr-defined]
    gate.limited = True  # type: ignore[attr-defined]  # read by the abuse-limit test
    return gate


def require_write(scope: str) -> Callable[[Request], Awaitable[apikeys.ApiKey]]:
    """`require(scope)` for a route that writes: limited per client address (before the key
    is looked up) and per key."""
    return _limited(scope, lambda res: res.write_limiter, "write")


def require_receipt(scope: str) -> Callable[[Request], Awaitable[apikeys.ApiKey]]:
    """`require_write(scope)` for receipts, whose per-key limit is the receipts' (a
    publishable key speaks for every phone of its app)."""
    return _limited(scope, lambda res: res.receipt_limiter, "receipt")


def require_trigger(scope: str) -> Callable[[Request], Awaitable[apikeys.ApiKey]]:
    """`require_write(scope)` for the REST triggers, whose per-key limit is the trigger's."""
    return _limited(scope, lambda res: res.trigger_limiter, "trigger")
