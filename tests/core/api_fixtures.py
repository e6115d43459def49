"""Fixtures for in-process API tests: the app with its lifespan, keys, an admin, a queue probe.

Imported by the test modules that use them (`from tests.core.api_fixtures import *`-free:
each names what it takes), so the older test modules keep their own fixtures untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import httpx
import pytest
from fastapi import FastAPI, routing
from fastapi.routing import APIRoute

from pushfan import admins, apikeys
from pushfan.api.app import create_app
from pushfan.db import Pool
from pushfan.settings import Settings
from pushfan.topology import QueueNames

ADMIN_USER = "ops"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
async def api(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


OWNER = "tests"
APPS = ("alpha", "beta")  # the apps of the `settings` fixture


@pytest.fixture
async def app(
    settings: Settings, pool: Pool, channel: aio_pika.abc.AbstractChannel
) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, for tests that need several clients."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client of `app` connecting from `address` (its own cookie jar)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


def all_routes(app: FastAPI) -> list[APIRoute]:
    flatten = getattr(routing, "iter_route_contexts", None)
    found = [c.route for c in flatten(app.routes)] if flatten else list(app.routes)
    return [r for r in found if isinstance(r, APIRoute)]


def declared(route: APIRoute, attribute: str) -> object | None:
    """What a route's auth dependency declares (`scope`, `role`, `limited`), if any."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        value = getattr(dep.call, attribute, None)
        if value is not None:
            return value
        stack.extend(dep.dependencies)
    return None


async def bearer(
    pool: Pool, *scopes: str, owner: str = OWNER, apps: tuple[str, ...] = APPS
) -> dict[str, str]:
    """Authorization for a new key of `owner` bound to `apps`."""
    _, plaintext = await apikeys.create(pool, "test", list(scopes), owner=owner, apps=apps)
    return {"authorization": f"Bearer {plaintext}"}


async def queued(channel: aio_pika.abc.AbstractChannel, settings: Settings) -> int:
    """Messages waiting in every queue of this test's prefix."""
    total = 0
    for name in QueueNames.for_prefix(settings.queue_prefix).all():
        declared = await channel.declare_queue(name, passive=True)
        total += declared.declaration_result.message_count or 0
    return total


@pytest.fixture
async def admin(pool: Pool) -> admins.Admin:
    return await admins.create(pool, ADMIN_USER, ADMIN_PASSWORD, role="admin")


async def sign_in(
    client: httpx.AsyncClient, password: str = ADMIN_PASSWORD, username: str = ADMIN_USER
) -> httpx.Response:
    form = await client.get("/admin/login")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return await client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token},
    )


def csrf_of(page: str) -> str:
    return page.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
