"""Start-up of the worker processes: settings, connections, metrics, then the runner."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
import uvloop

from pushfan import db, metrics, topology
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from workers.expander import Expander
from workers.providers.build import build_providers
from workers.runner import Runner
from workers.sender import Sender

log = logging.getLogger(__name__)


async def run_expander(settings: Settings) -> None:
    pool = await db.create_pool(settings, min_size=1, max_size=4)
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    publish_connection = await topology.connect(settings)
    try:
        channel = await publish_connection.channel(publisher_confirms=True)
        expander = Expander(
            settings,
            pool,
            Progress(redis, settings.redis_prefix, settings.progress_ttl_s),
            Publisher(channel, settings.publish_timeout_s),
        )
        names = topology.QueueNames.for_prefix(settings.queue_prefix)
        runner = Runner(settings, names.expand, settings.expander_prefetch, expander.handle)
        await _serve(settings, runner)
    finally:
        await publish_connection.close()
        await redis.aclose()
        await pool.close()


async def run_sender(settings: Settings, provider: str) -> None:
    pool = await db.create_pool(settings, min_size=1, max_size=4)
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    providers = build_providers(settings, provider)
    if not providers.by_app:
        log.warning("no app has %s credentials; batches for it will count as failed", provider)
    try:
        sender = Sender(
            provider,
            providers.by_app,
            pool,
            Progress(redis, settings.redis_prefix, settings.progress_ttl_s),
        )
        names = topology.QueueNames.for_prefix(settings.queue_prefix)
        runner = Runner(settings, names.send[provider], settings.sender_prefetch, sender.handle)
        await _serve(settings, runner)
    finally:
        await providers.close()
        await redis.aclose()
        await pool.close()


async def _serve(settings: Settings, runner: Runner) -> None:
    metrics.precreate()
    server = None
    if settings.metrics_port:
        server = metrics.serve_worker_endpoints(settings.metrics_port, lambda: runner.ready)
    runner.install_signal_handlers()
    try:
        await runner.run()
    finally:
        if server is not None:
            server.shutdown()


def run(kind: str, settings: Settings, provider: str | None = None) -> None:
    if kind == "expander":
        uvloop.run(run_expander(settings))
    elif kind == "sender":
        assert provider in ("apns", "fcm")
        uvloop.run(run_sender(settings, provider))
    else:
        raise ValueError(f"unknown worker kind {kind!r}")
