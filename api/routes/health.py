"""Liveness, readiness and metrics: the only routes that need no API key (metrics can be
made to need an `admin` key, or moved to their own port: Settings.metrics_require_key,
Settings.api_metrics_port)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pushfan.api.deps import Res, authenticate
from pushfan.api.routing import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(res: Res, response: Response) -> dict[str, str]:
    checks: dict[str, str] = {}

    async def probe(name: str, call: Callable[[], Awaitable[object]]) -> None:
        try:
            await asyncio.wait_for(call(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:  # a readiness probe reports, it does not raise
            checks[name] = type(exc).__name__

    await asyncio.gather(
        probe("database", lambda: res.pool.fetchval("SELECT 1")),
        probe("redis", res.redis.ping),
    )
    checks["broker"] = "ok" if not res.publisher.closed else "closed"
    if any(v != "ok" for v in checks.values()):
        response.status_code = 503
    return checks


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, res: Res) -> Response:
    # Off the public listener when a metrics port is set; or behind an `admin` key.
    if res.settings.api_metrics_port:
        raise HTTPException(404, "metrics are served on the metrics port")
    if res.settings.metrics_require_key:
        await authenticate(request, "admin")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
