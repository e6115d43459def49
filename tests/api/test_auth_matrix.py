"""Every route × {no key, wrong scope, revoked key, right key}, generated from the app's
routes so a new route is covered the day it is added.

/v1 routes declare their scope through `api.deps.require`/`require_trigger` (the test reads
it from the dependency); dashboard routes need a signed-in session and are refused to API
keys, even `admin` ones; only the health checks, /metrics and the sign-in page are open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute

from pushfan import apikeys
from pushfan.api.app import create_app
from pushfan.apikeys import SCOPES
from pushfan.db import Pool
from pushfan.settings import Settings

OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin/login",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def all_routes(app: FastAPI) -> Iterator[APIRoute]:
    flatten = getattr(routing, "iter_route_contexts", None)
    found = [c.route for c in flatten(app.routes)] if flatten else list(app.routes)
    yield from (r for r in found if isinstance(r, APIRoute))


def scope_of(route: APIRoute) -> str | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        scope = getattr(dep.call, "scope", None)
        if scope is not None:
            return str(scope)
        stack.extend(dep.dependencies)
    return None


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def cases(settings: Settings) -> list[tuple[str, str, str | None]]:
    app = create_app(settings)
    return [
        (method, route.path, scope_of(route))
        for route in all_routes(app)
        for method in sorted(route.methods or ())
    ]


async def test_every_v1_route_declares_a_scope(settings: Settings) -> None:
    for method, path, scope in cases(settings):
        if path.startswith("/v1"):
            assert scope in SCOPES, f"{method} {path} has no require(scope)"
        elif path not in OPEN:
            assert path.startswith("/admin"), f"{method} {path} is neither /v1 nor /admin"


async def test_v1_routes_by_key(api: httpx.AsyncClient, pool: Pool, settings: Settings) -> None:
    keys: dict[str, str] = {}
    for name in SCOPES:
        _, keys[name] = await apikeys.create(pool, name, [name])
    revoked_keys: dict[str, str] = {}
    for name in SCOPES:
        key, revoked_keys[name] = await apikeys.create(pool, f"old {name}", [name])
        await apikeys.revoke(pool, key.id)
    checked = 0
    for method, path, scope in cases(settings):
        if not path.startswith("/v1"):
            continue
        assert scope is not None
        url = concrete(path)

        async def call(key: str | None, method: str = method, url: str = url) -> int:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            body: dict[str, str] | None = {} if method in ("POST", "PUT", "PATCH") else None
            return (await api.request(method, url, json=body, headers=headers)).status_code

        wrong = next(s for s in SCOPES if s not in (scope, "admin"))
        assert await call(None) == 401, (method, path)
        assert await call("pf_0000_nope") == 401, (method, path)
        assert await call(keys[wrong]) == 403, (method, path, wrong)
        assert await call(revoked_keys[scope]) == 403, (method, path)
        for good in (keys[scope], keys["admin"]):
            assert await call(good) not in (401, 403), (method, path)
        checked += 1
    assert checked >= 6  # alerts (2), notifications (2), devices (2), and any new ones


async def test_dashboard_routes_need_a_session_not_a_key(
    api: httpx.AsyncClient, pool: Pool, settings: Settings
) -> None:
    _, admin_key = await apikeys.create(pool, "admin", ["admin"])
    for method, path, _ in cases(settings):
        if not path.startswith("/admin") or path in OPEN:
            continue
        for headers in ({}, {"authorization": f"Bearer {admin_key}"}):
            response = await api.request(method, concrete(path), headers=headers)
            if method == "GET" and path == "/admin":
                assert response.status_code == 303, path  # the page sends you to sign in
            else:
                assert response.status_code == 401, (method, path, response.text)
