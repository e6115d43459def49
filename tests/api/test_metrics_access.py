"""/metrics: open on the API port by default (what the manifests scrape), or behind an
`admin` key, or moved to its own port."""

from __future__ import annotations

import aio_pika
import httpx
import pytest

from loadtest.stack import free_port
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import bearer, in_process


async def test_metrics_are_open_by_default(api: httpx.AsyncClient) -> None:
    response = await api.get("/metrics")
    assert response.status_code == 200 and "pushfan_" in response.text


async def test_metrics_can_require_an_admin_key(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> None:
    protected = settings.model_copy(update={"metrics_require_key": True})
    async with in_process(protected) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await bearer(pool, "alerts:send")
        assert (await client.get("/metrics", headers=wrong)).status_code == 403
        admin = await bearer(pool, "admin")
        assert (await client.get("/metrics", headers=admin)).status_code == 200


@pytest.mark.timeout(30)
async def test_metrics_can_move_to_their_own_port(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> None:
    port = free_port()
    separate = settings.model_copy(update={"api_metrics_port": port})
    async with in_process(separate) as client:
        assert (await client.get("/metrics")).status_code == 404
        async with httpx.AsyncClient() as direct:
            response = await direct.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200 and "pushfan_" in response.text
