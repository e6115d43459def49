"""Abuse limits: every write route is limited per client address and per API key (429 with
Retry-After), and unknown keys are negatively cached, so a flood of one bad key costs one
database query, not one per request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pushfan import apikeys
from pushfan.api.deps import ApiResources
from pushfan.db import Pool
from pushfan.settings import Settings
from tests.fixtures.api import all_routes, bearer, client, declared

BURST = 3
DEVICE = {"platform": "android", "app": "alpha", "token": "t" * 40}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Tight limits, refilling slowly enough (one request per 100 s) that a test never
    sees them refill."""
    return settings.model_copy(
        update={
            "address_rate_per_s": 0.01,
            "address_burst": BURST,
            "write_rate_per_s": 0.01,
            "write_burst": BURST,
        }
    )


def test_every_write_route_is_limited(app: FastAPI) -> None:
    """Generated from the routes: a /v1 route that is not a GET must use require_write or
    require_trigger; a dashboard POST other than sign-in must use the dashboard's writer."""
    writes = [
        (method, route)
        for route in all_routes(app)
        for method in route.methods or ()
        if method not in ("GET", "HEAD")
    ]
    for method, route in writes:
        if route.path == "/admin/login":
            continue  # its own rule: pushfan.signin (tests/api/test_signin.py)
        if route.path.startswith("/v1"):
            assert declared(route, "limited"), f"{method} {route.path} has no write limit"
        else:
            assert declared(route, "role"), f"{method} {route.path} has no dashboard writer"
    assert len(writes) >= 8


def assert_limited(response: httpx.Response, whose: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert whose in response.json()["detail"]


async def test_one_address_is_limited_whatever_key_it_uses(app: FastAPI, pool: Pool) -> None:
    """From one address, BURST writes pass with fresh keys, the next is 429 (even with an
    unknown key, which is then refused before any lookup); another address is not limited."""
    crowd = client(app, "10.0.0.1")
    for _ in range(BURST):
        headers = await bearer(pool, "devices:write")
        assert (await crowd.post("/v1/devices", json=DEVICE, headers=headers)).status_code < 300
    headers = await bearer(pool, "devices:write")
    assert_limited(await crowd.post("/v1/devices", json=DEVICE, headers=headers), "address")
    bogus = {"authorization": "Bearer pf_0badc0de_secret"}
    assert_limited(await crowd.delete("/v1/devices/1", headers=bogus), "address")
    other = client(app, "10.0.0.2")
    assert (await other.post("/v1/devices", json=DEVICE, headers=headers)).status_code < 300


async def test_one_key_is_limited_whatever_address_it_uses(app: FastAPI, pool: Pool) -> None:
    headers = await bearer(pool, "devices:write")
    for n in range(BURST):
        response = await client(app, f"10.0.1.{n}").post(
            "/v1/devices", json=DEVICE, headers=headers
        )
        assert response.status_code < 300
    response = await client(app, "10.0.1.99").post("/v1/devices", json=DEVICE, headers=headers)
    assert_limited(response, "API key")
    fresh = await bearer(pool, "devices:write")
    response = await client(app, "10.0.1.99").post("/v1/devices", json=DEVICE, headers=fresh)
    assert response.status_code < 300


class Counting:
    """The real pool, counting the queries made through it."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.queries = 0

    async def fetchrow(self, *args: Any) -> Any:
        self.queries += 1
        return await self.pool.fetchrow(*args)


REQUESTS = 200


async def unknown_key_queries(app: FastAPI, cache: apikeys.KeyCache) -> int:
    """Database queries made by REQUESTS reads with one unknown key (reads are not limited,
    so every request reaches the key lookup)."""
    res: ApiResources = app.state.resources
    counting = Counting(res.pool)
    res.pool, res.key_cache = counting, cache
    try:
        api = client(app)
        bogus = {"authorization": "Bearer pf_0badc0de_not-a-secret"}
        for _ in range(REQUESTS):
            assert (await api.get("/v1/alerts/x", headers=bogus)).status_code == 401
    finally:
        res.pool = counting.pool
    return counting.queries


async def test_unknown_keys_cost_one_query_per_ttl_not_per_request(app: FastAPI) -> None:
    without = await unknown_key_queries(app, apikeys.KeyCache(unknown_ttl_s=0))
    with_cache = await unknown_key_queries(app, apikeys.KeyCache())
    print(
        f"queries per unknown-key request: {without / REQUESTS:.3f} without the negative "
        f"cache, {with_cache / REQUESTS:.3f} with it ({REQUESTS} requests)"
    )
    assert without == REQUESTS
    assert with_cache == 1
