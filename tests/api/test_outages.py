"""The API when a service it needs is unreachable: 503 with Retry-After and a one-line
reason, within seconds, never a 500."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from pydantic import SecretStr

from loadtest.stack import free_port
from pushfan import alerts, redis_client
from pushfan.alerts import AlertIn
from pushfan.api.app import create_app
from pushfan.cancellation import CancelWatch
from pushfan.db import Pool
from pushfan.messages import AudienceFilter
from pushfan.settings import Settings
from tests.fixtures.api import OWNER, bearer

ALERT = {"title": "t", "body": "b"}


@pytest.fixture
async def api_without_redis(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> AsyncIterator[httpx.AsyncClient]:
    """The API started while its Redis is away (nothing listens on its port)."""
    away = settings.model_copy(
        update={
            "redis_url": SecretStr(f"redis://127.0.0.1:{free_port()}/0"),
            "redis_timeout_s": 1.0,
        }
    )
    app = create_app(away)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/alerts", ALERT),
        ("GET", "/v1/alerts/{running}", None),
        ("POST", "/v1/notifications", {**ALERT, "to": {"device_ids": [1]}}),
    ],
)
async def test_routes_answer_503_with_retry_after_while_redis_is_away(
    api_without_redis: httpx.AsyncClient, pool: Pool, method: str, path: str, body: object
) -> None:
    headers = await bearer(pool, "alerts:send", "notifications:send")
    audience = AudienceFilter(apps=["alpha"])
    running, _ = await alerts.create(
        pool, AlertIn("t", "b", {}, audience, 60, "high"), None, "test", OWNER
    )  # the key's owner's, to its app; its live counts are in Redis
    began = time.monotonic()
    response = await api_without_redis.request(
        method, path.format(running=running.id), json=body, headers=headers
    )
    assert time.monotonic() - began < 5
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    detail = response.json()["detail"]
    assert "Redis" in detail and "\n" not in detail


async def test_readiness_fails_and_liveness_holds_while_redis_is_away(
    api_without_redis: httpx.AsyncClient,
) -> None:
    assert (await api_without_redis.get("/readyz")).status_code == 503
    assert (await api_without_redis.get("/healthz")).status_code == 200


async def test_a_cancel_reaches_the_workers_while_redis_is_away(pool: Pool) -> None:
    """Given an alert cancelled in PostgreSQL and a Redis nobody can reach, the workers'
    cancel watch learns of it from PostgreSQL within a poll."""
    alert, _ = await alerts.create(
        pool, AlertIn("t", "b", {}, AudienceFilter(), 60, "high"), None, "test"
    )
    await alerts.cancel(pool, alert.id)
    away = Settings(redis_url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"), redis_timeout_s=1)
    client = redis_client.connect(away)
    watch = CancelWatch(client, "t:", 0.05, pool)
    await watch.start()
    try:
        for _ in range(100):
            if watch.is_cancelled(alert.id):
                break
            await asyncio.sleep(0.05)
        assert watch.is_cancelled(alert.id)
    finally:
        await watch.stop()
        await client.aclose()
