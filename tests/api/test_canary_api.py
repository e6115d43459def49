"""`canary` on POST /v1/alerts: validated (a 422 with nothing stored or queued otherwise),
stored with the alert and carried by its expansion task to every batch; the workers' side
is tests/workers/test_pause.py."""

from __future__ import annotations

from typing import Any

import aio_pika
import httpx
import pytest

from pushfan import alerts
from pushfan.db import Pool
from pushfan.messages import Canary, decode_expand
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from tests.fixtures.api import bearer, queued

PUSH = {"title": "Sale", "body": "Now"}


@pytest.mark.parametrize(
    "canary",
    [
        {"max_failure_ratio": 0.1},  # no size
        {"devices": 10, "percent": 5, "max_failure_ratio": 0.1},  # both sizes
        {"devices": 0, "max_failure_ratio": 0.1},
        {"devices": "10", "max_failure_ratio": 0.1},
        {"percent": 100, "max_failure_ratio": 0.1},
        {"percent": 0, "max_failure_ratio": 0.1},
        {"devices": 10},  # no ratio
        {"devices": 10, "max_failure_ratio": 1},
        {"devices": 10, "max_failure_ratio": -0.1},
        {"devices": 10, "max_failure_ratio": 0.1, "after_s": 5},  # unknown field
        "10",
    ],
)
async def test_a_bad_canary_is_a_422_and_nothing_is_queued(
    api: httpx.AsyncClient,
    pool: Pool,
    channel: aio_pika.abc.AbstractChannel,
    settings: Settings,
    canary: Any,
) -> None:
    key = await bearer(pool, "alerts:send")
    response = await api.post("/v1/alerts", json={**PUSH, "canary": canary}, headers=key)
    assert response.status_code == 422, response.text
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 0
    assert await queued(channel, settings) == 0


async def test_a_canary_is_stored_and_reaches_the_expansion(
    api: httpx.AsyncClient, pool: Pool, channel: aio_pika.abc.AbstractChannel, settings: Settings
) -> None:
    key = await bearer(pool, "alerts:send")
    canary = {"percent": 2.5, "max_failure_ratio": 0.05}
    response = await api.post("/v1/alerts", json={**PUSH, "canary": canary}, headers=key)
    assert response.status_code == 202, response.text
    stored = await alerts.get(pool, response.json()["id"])
    expected = Canary(max_failure_ratio=0.05, percent=2.5)
    assert stored is not None and stored.canary == expected
    queue = await channel.declare_queue(
        QueueNames.for_prefix(settings.queue_prefix).expand, passive=True
    )
    message = await queue.get(timeout=5)
    assert decode_expand(message.body).canary == expected
