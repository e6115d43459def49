"""The per-key rate limit of the REST triggers: 429 with Retry-After, one budget per key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest

from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import bearer, in_process, queued


@pytest.fixture
async def slow_api(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(update={"trigger_rate_per_s": 0.1, "trigger_burst": 2})
    async with in_process(limited) as client:
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
