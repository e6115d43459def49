"""Choosing the Redis client from settings: one server, or the master of a Sentinel group."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from redis.asyncio.sentinel import SentinelConnectionPool

from pushfan import redis_client
from pushfan.settings import Settings


def test_sentinels_are_host_port_pairs() -> None:
    settings = Settings(redis_sentinels="10.0.0.1:26379, sentinel-b:26380")
    assert settings.redis_sentinel_addresses == [("10.0.0.1", 26379), ("sentinel-b", 26380)]
    with pytest.raises(ValidationError, match="host:port"):
        Settings(redis_sentinels="10.0.0.1")


async def test_with_sentinels_the_client_follows_the_monitored_master() -> None:
    settings = Settings(
        redis_sentinels="127.0.0.1:26379",
        redis_sentinel_service="ledger",
        redis_url=SecretStr("redis://:secret@ignored:6379/3"),
    )
    client = redis_client.connect(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "ledger"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "secret"
    await client.aclose()


async def test_without_sentinels_one_server_with_timeouts() -> None:
    client = redis_client.connect(Settings(redis_timeout_s=1.5))
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 1.5
    await client.aclose()
