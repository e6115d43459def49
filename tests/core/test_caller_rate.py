"""Per-key rate limits on the REST triggers: GCRA in Redis, 429 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
import redis.asyncio as aioredis

from pushfan.api.app import create_app
from pushfan.caller_rate import CallerRateLimiter
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.core.api_fixtures import bearer, queued


async def test_gcra_allows_the_burst_then_spaces_requests(
    redis: aioredis.Redis, settings: Settings
) -> None:
    limiter = CallerRateLimiter(redis, settings.redis_prefix, rate_per_s=2, burst=3)
    decisions = [await limiter.hit("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 < decisions[-1].retry_after_s <= 0.5
    assert (await limiter.hit("other key")).allowed  # keys do not share a budget


async def test_a_zero_rate_disables_the_limit(redis: aioredis.Redis, settings: Settings) -> None:
    limiter = CallerRateLimiter(redis, settings.redis_prefix, rate_per_s=0, burst=1)
    assert all([(await limiter.hit("k")).allowed for _ in range(50)])


@pytest.fixture
async def slow_api(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(update={"trigger_rate_per_s": 0.1, "trigger_burst": 2})
    app = create_app(limited)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_triggers_answer_429_with_retry_after_per_key(
    slow_api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
) -> None:
    """Both triggers share one budget per key; another key has its own."""
    key = await bearer(pool, "alerts:send", "notifications:send")
    alert = {"title": "t", "body": "b"}
    statuses = [
        (await slow_api.post("/v1/alerts", json=alert, headers=key)).status_code,
        (await slow_api.post("/v1/alerts", json=alert, headers=key)).status_code,
    ]
    target = {**alert, "to": {"device_ids": [1]}}
    refused = await slow_api.post("/v1/notifications", json=target, headers=key)
    assert statuses == [202, 202] and refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert "rate limit" in refused.json()["detail"]
    assert await queued(channel, settings) == 2
    other = await bearer(pool, "alerts:send")
    assert (await slow_api.post("/v1/alerts", json=alert, headers=other)).status_code == 202
