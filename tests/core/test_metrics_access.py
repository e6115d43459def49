"""/metrics: open on the API port by default (what the manifests scrape), or behind an
`admin` key, or moved to its own port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest

from loadtest.stack import free_port
from pushfan.api.app import create_app
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.core.api_fixtures import api, bearer

__all__ = ["api"]


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_metrics_are_open_by_default(api: httpx.AsyncClient) -> None:
    response = await api.get("/metrics")
    assert response.status_code == 200 and "pushfan_" in response.text


async def test_metrics_can_require_an_admin_key(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> None:
    protected = settings.model_copy(update={"metrics_require_key": True})
    async for client in client_for(protected):
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
    async for client in client_for(separate):
        assert (await client.get("/metrics")).status_code == 404
        async with httpx.AsyncClient() as direct:
            response = await direct.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200 and "pushfan_" in response.text
