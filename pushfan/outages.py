"""What "a service this process needs is unreachable" looks like, in one place.

The API answers these with 503 + Retry-After and a one-line reason; a worker holds the
message it was processing and tries again once the service answers, instead of handing it
back to a broker that would redeliver it into the same outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import redis.exceptions

from pushfan.ledger_epoch import LedgerLost

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PAUSE_S = 5.0

# Redis: refused, reset or timed out (the client's socket_timeout); a replica that a failover
# has not yet replaced answers READONLY, a loading one BUSY LOADING.
_REDIS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
)
# PostgreSQL: refused, shutting down, starting up, connection lost mid-query.
_POSTGRES = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)
UNAVAILABLE: tuple[type[Exception], ...] = (
    *_REDIS,
    *_POSTGRES,
    LedgerLost,
    ConnectionError,  # OSError's refused/reset family, from any client
    TimeoutError,  # asyncio's and the socket's (3.11: the same class)
)


def service_of(exc: BaseException) -> str:
    if isinstance(exc, LedgerLost):
        return "the ledger (being rebuilt after a Redis loss)"
    if isinstance(exc, _REDIS):
        return "Redis"
    if isinstance(exc, _POSTGRES):
        return "PostgreSQL"
    return "a backing service"


def reason(exc: BaseException) -> str:
    """One line, no internals: which service and what kind of failure."""
    return f"{service_of(exc)} is unavailable ({type(exc).__name__}); retry shortly"


def closed_here(exc: BaseException) -> bool:
    """Our own pool was closed (a shutdown), not the service gone: waiting cannot help."""
    return isinstance(exc, asyncpg.InterfaceError) and "pool is clos" in str(exc)


async def until_available(call: Callable[[], Awaitable[T]], what: str) -> T:
    """Run `call` until the services it needs answer, pausing longer each time (up to
    MAX_PAUSE_S). For a step that must not be redone from the start once the step before it
    happened, e.g. recording pushes that already left (the caller's cancellation still
    stops it)."""
    pause = 0.05
    while True:
        try:
            return await call()
        except UNAVAILABLE as exc:
            if closed_here(exc):
                raise
            log.warning("%s waits: %s", what, reason(exc))
            await asyncio.sleep(pause)
            pause = min(MAX_PAUSE_S, pause * 2)
