"""The API process: FastAPI app factory. Resources open in the lifespan, never at import."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushfan import db, metrics, outages, redis_client, scripts, topology
from pushfan.api import hygiene, openapi
from pushfan.api.admin import AdminHeaders
from pushfan.api.deps import ApiResources
from pushfan.api.edge import EdgeHeaders
from pushfan.api.routes import (
    admin_api,
    admin_pages,
    alerts,
    devices,
    follow_up,
    health,
    notifications,
    outcomes,
    preview,
    receipts,
    segments,
    user_lists,
)
from pushfan.caller_rate import CallerRateLimiter
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.sessions import Sessions
from pushfan.settings import Settings
from pushfan.signin import SignInGuard
from pushfan.trigger import Trigger

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A service the request needs is unreachable (pushfan.outages): 503, Retry-After and one
    line saying which, never a stack trace."""
    reason = outages.reason(exc)
    log.warning("%s %s answered 503: %s", request.method, request.url.path, reason)
    return JSONResponse(
        {"detail": reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


class BodyLimit:
    """Refuse request bodies over the limit with 413, before any handler reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, f"request body over {self.max_bytes} bytes")
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:  # raised outside a route (a route answers the 413 itself)
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.max_bytes} bytes"}, status_code=413
        )
        await response(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised while the body is read; an HTTPException, so FastAPI's body parsing passes it
    on as the 413 it is (any other exception there becomes a 400)."""


class RequestTimer:
    """Record request latency by route template (bounded labels, never the raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = metrics.method_label(scope["method"])
            metrics.API_LATENCY.labels(template, method, f"{status // 100}xx").observe(
                time.perf_counter() - started
            )


def _routes(app: FastAPI) -> list[object]:
    # FastAPI >= 0.165 nests included routers; iter_route_contexts flattens them.
    flatten = getattr(routing, "iter_route_contexts", None)
    if flatten is None:
        return list(app.routes)
    return [context.route for context in flatten(app.routes)]


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(
            settings, min_size=2, max_size=10, command_timeout_s=2 * settings.database_timeout_s
        )
        redis = redis_client.connect(settings)
        connection = await topology.connect(settings)
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel, settings)
        try:
            await scripts.preload(redis)
        except outages.UNAVAILABLE as exc:
            # Start anyway: routes answer 503 until Redis is back, and the scripts are then
            # loaded on first use (pushfan.scripts: EVALSHA, NOSCRIPT, SCRIPT LOAD).
            log.warning("starting without Redis: %s", outages.reason(exc))
        publisher = Publisher(channel, settings.publish_timeout_s)
        queues = topology.QueueNames.for_prefix(settings.queue_prefix)
        prefix = settings.redis_prefix
        progress = Progress(redis, prefix, settings.progress_ttl_s, pool)
        app.state.resources = ApiResources(
            settings=settings,
            pool=pool,
            redis=redis,
            publisher=publisher,
            progress=progress,
            queues=queues,
            trigger=Trigger(pool, publisher, progress, queues, settings.app_names),
            trigger_limiter=CallerRateLimiter(
                redis, prefix, settings.trigger_rate_per_s, settings.trigger_burst
            ),
            write_limiter=CallerRateLimiter(
                redis, prefix, settings.write_rate_per_s, settings.write_burst
            ),
            address_limiter=CallerRateLimiter(
                redis, prefix, settings.address_rate_per_s, settings.address_burst
            ),
            receipt_limiter=CallerRateLimiter(
                redis, prefix, settings.receipt_rate_per_s, settings.receipt_burst
            ),
            signin=SignInGuard(
                redis, prefix, settings.login_attempts_per_min, settings.known_device_ttl_s
            ),
            sessions=Sessions(redis, prefix, settings.session_ttl_s),
        )
        metrics_server = None
        if settings.api_metrics_port:
            metrics_server = metrics.serve_worker_endpoints(
                settings.metrics_host, settings.api_metrics_port, lambda: True
            )
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            await connection.close()
            await redis.aclose()
            await pool.close()

    metrics.precreate()
    app = FastAPI(
        title="pushfan",
        version="0.1.0",
        description="Mass push notifications through APNs and FCM.",
        lifespan=lifespan,
        # No Swagger UI or ReDoc: FastAPI loads their scripts from a public CDN, which fails
        # offline and would widen the CSP. The document itself stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    for kind in outages.UNAVAILABLE:
        app.add_exception_handler(kind, unavailable)
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(alerts.router)
    app.include_router(outcomes.router)
    app.include_router(follow_up.router)
    app.include_router(receipts.router)
    app.include_router(notifications.router)
    app.include_router(segments.router)
    app.include_router(user_lists.router)
    app.include_router(preview.router)
    app.include_router(admin_pages.router)
    app.include_router(admin_api.router)
    app.mount(
        "/admin/static", StaticFiles(directory=Path(__file__).parent / "static"), "admin-static"
    )
    # Every route's latency series exists at 0 from the start (include routers above this).
    metrics.precreate_api(
        (route.path, route.methods or ()) for route in _routes(app) if isinstance(route, APIRoute)
    )
    openapi.document(app, _routes(app))
    app.add_exception_handler(RequestValidationError, hygiene.invalid_request)
    app.add_middleware(AdminHeaders)
    app.add_middleware(EdgeHeaders)
    app.add_middleware(RequestTimer)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
