"""The Redis client every process uses: one server (`PUSHFAN_REDIS_URL`) or the master of a
Sentinel-monitored group (`PUSHFAN_REDIS_SENTINELS`, `PUSHFAN_REDIS_SENTINEL_SERVICE`).

Through Sentinel, redis-py asks the sentinels for the current master and, when a command
fails on a connection (the master died or was demoted), asks again, so a failover costs the
callers one failed command, which they retry as they would any Redis blip. Commands time
out after `redis_timeout_s`: an unreachable Redis is an error within seconds, never a hang.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from pushfan.settings import Settings


def _options(settings: Settings) -> dict[str, Any]:
    return {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "health_check_interval": 10,
    }


def connect(settings: Settings) -> aioredis.Redis:
    url = settings.redis_url.get_secret_value()
    if not settings.redis_sentinel_addresses:
        return aioredis.from_url(url, **_options(settings))
    # The URL still carries the password and database of the monitored servers.
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    sentinel = Sentinel(
        settings.redis_sentinel_addresses,
        sentinel_kwargs={"socket_timeout": settings.redis_timeout_s},
        **_options(settings),
    )
    client: aioredis.Redis = sentinel.master_for(
        settings.redis_sentinel_service, db=db, password=parts.password
    )
    return client
