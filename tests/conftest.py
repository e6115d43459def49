"""Fixtures for the real services: every test gets its own database schema, queue prefix
and Redis key prefix, so tests never see each other's data. A missing service fails the
test loudly (it is not skipped): CI must run against the real RabbitMQ, Redis, PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aio_pika
import pytest
import redis.asyncio as aioredis

from pushfan import db, topology
from pushfan.batch_ledger import BatchLedger
from pushfan.cancellation import CancelWatch
from pushfan.progress import Progress
from pushfan.provider_rate import ProviderRateLimiter
from pushfan.publisher import Publisher
from pushfan.settings import AppConfig, Settings


@pytest.fixture
def settings() -> Settings:
    name = f"t_{secrets.token_hex(4)}"
    return Settings(
        database_schema=name,
        queue_prefix=name,
        redis_prefix=f"{name}:",
        queue_type="classic",  # quorum queues work too, but are slower to declare
        apps=[AppConfig(name="alpha"), AppConfig(name="beta")],
    )


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[db.Pool]:
    try:
        await db.migrate(settings)
    except OSError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"PostgreSQL is not reachable ({exc}); start it, see README")
    pool = await db.create_pool(settings)
    yield pool
    await pool.close()
    await db.drop_schema(settings)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"Redis is not reachable ({exc}); start it, see README")
    yield client
    async for key in client.scan_iter(f"{settings.redis_prefix}*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def progress(redis: aioredis.Redis, settings: Settings, pool: db.Pool) -> Progress:
    return Progress(redis, settings.redis_prefix, settings.progress_ttl_s, pool)


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    try:
        connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"RabbitMQ is not reachable ({exc}); start it, see README")
    channel = await connection.channel(publisher_confirms=True)
    await topology.declare(channel, settings)
    yield channel
    await topology.delete_all(channel, settings)
    await connection.close()


@pytest.fixture
def publisher(channel: aio_pika.abc.AbstractChannel) -> Publisher:
    return Publisher(channel, 5)


@pytest.fixture
async def cancels(redis: aioredis.Redis, settings: Settings) -> AsyncIterator[CancelWatch]:
    watch = CancelWatch(redis, settings.redis_prefix, 0.05)
    await watch.start()
    yield watch
    await watch.stop()


@pytest.fixture
def limiter(redis: aioredis.Redis, settings: Settings) -> ProviderRateLimiter:
    return ProviderRateLimiter.from_settings(redis, settings)


@pytest.fixture
def ledger(redis: aioredis.Redis, settings: Settings, progress: Progress) -> BatchLedger:
    return BatchLedger.from_settings(redis, settings, progress.epoch)
