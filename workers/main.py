"""Start-up of the worker processes: settings, connections, metrics, then the runner.

Every worker opens the same few resources (a database pool, Redis, a publishing channel with
confirms, the cancel watch); `resources()` opens and closes them in one place, and runs the
scheduler of `send_at` alerts beside the worker's own job (pushfan.workers.scheduler: every
worker process runs one, none is a leader).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis
import uvloop

from pushfan import db, metrics, redis_client, scripts, topology
from pushfan.batch_ledger import BatchLedger
from pushfan.canary import CanaryGate
from pushfan.cancellation import CancelWatch
from pushfan.pausing import AuthRule
from pushfan.progress import Progress
from pushfan.provider import Provider
from pushfan.provider_rate import ProviderRateLimiter
from pushfan.publisher import Publisher
from pushfan.settings import Settings
from pushfan.workers.expander import Expander
from pushfan.workers.feedback import Feedback
from pushfan.workers.providers.build import build_providers
from pushfan.workers.runner import Runner
from pushfan.workers.scheduler import Scheduler
from pushfan.workers.sender import Sender

log = logging.getLogger(__name__)

CLOSE_STEP_S = 3.0  # each resource's close at shutdown, after the drain


async def _close(what: str, closing: Awaitable[object]) -> bool:
    """Await one resource's close for at most CLOSE_STEP_S; False (logged) if it did not
    finish. Shutdown comes after the drain, so nothing left open then holds unfinished work:
    a close that waits (a pool waiting for a connection a stray task holds, a broker that
    does not answer) must not keep the process past its stop grace period."""
    try:
        await asyncio.wait_for(closing, CLOSE_STEP_S)
        return True
    except TimeoutError:
        log.warning("closing %s took over %.0f s at shutdown; abandoned", what, CLOSE_STEP_S)
        return False


async def _close_pool(what: str, pool: db.Pool) -> None:
    if not await _close(what, pool.close()):
        pool.terminate()


@dataclass
class WorkerResources:
    pool: db.Pool
    record_pool: db.Pool
    redis: aioredis.Redis
    publisher: Publisher
    progress: Progress
    cancels: CancelWatch
    queues: topology.QueueNames


@asynccontextmanager
async def resources(settings: Settings) -> AsyncIterator[WorkerResources]:
    # Workers write bookkeeping (final counts, dead tokens) that the record and the providers
    # hold too: asynchronous commits (pushfan.db.create_pool, durable=False). The durable
    # record of outcomes (pushfan.outcome_record) and the ledger's rebuild commit
    # synchronously: a batch is acked only once its outcomes are on disk.
    pool = await db.create_pool(settings, min_size=1, max_size=4, durable=False)
    record_pool = await db.create_pool(settings, min_size=1, max_size=4)
    redis = redis_client.connect(settings)
    connection = await topology.connect(settings)
    cancels = CancelWatch(redis, settings.redis_prefix, settings.cancel_poll_s, pool)
    progress = Progress(redis, settings.redis_prefix, settings.progress_ttl_s, record_pool)
    # After a rebuild, no push of an alert cancelled meanwhile may leave before this worker
    # has seen the cancellations again.
    progress.epoch.on_recovered.append(cancels.refresh)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel, settings)
        await scripts.preload(redis)
        await cancels.start()
        publisher = Publisher(channel, settings.publish_timeout_s, settings.publish_retry_window_s)
        queues = topology.QueueNames.for_prefix(settings.queue_prefix)
        scheduler = Scheduler(record_pool, publisher, queues, settings.scheduler_poll_s)
        scheduler.start()
        try:
            yield WorkerResources(
                pool=pool,
                redis=redis,
                publisher=publisher,
                record_pool=record_pool,
                progress=progress,
                cancels=cancels,
                queues=queues,
            )
        finally:
            await scheduler.stop()
    finally:
        await _close("the cancellation watch", cancels.stop())
        await _close("the broker connection", connection.close())
        await _close("redis", redis.aclose())
        await _close_pool("the record pool", record_pool)
        await _close_pool("the database pool", pool)


async def run_expander(settings: Settings) -> None:
    async with resources(settings) as res:
        expander = Expander(
            settings, res.pool, res.progress, res.publisher, res.cancels, res.record_pool
        )
        runner = Runner(settings, res.queues.expand, settings.expander_prefetch, expander.handle)
        await _serve(settings, runner)


async def run_sender(settings: Settings, provider: Provider) -> None:
    providers = build_providers(settings, provider)
    if not providers.by_app:
        log.warning("no app has %s credentials; batches for it will count as failed", provider)
    try:
        async with resources(settings) as res:
            sender = Sender(
                settings,
                provider,
                providers.by_app,
                res.pool,
                BatchLedger.from_settings(res.redis, settings, res.progress.epoch),
                ProviderRateLimiter.from_settings(res.redis, settings),
                res.publisher,
                res.cancels,
                res.record_pool,
                AuthRule(
                    res.redis,
                    res.pool,
                    settings.redis_prefix,
                    settings.auth_pause_after,
                    settings.progress_ttl_s,
                ),
                CanaryGate(
                    res.redis,
                    res.pool,
                    settings.redis_prefix,
                    settings.progress_ttl_s,
                    settings.batch_lease_s,
                ),
            )
            queue = res.queues.send[provider]
            runner = Runner(settings, queue, settings.sender_prefetch, sender.handle, sender.drain)
            await _serve(settings, runner)
    finally:
        await _close("the provider clients", providers.close())


async def run_feedback(settings: Settings) -> None:
    async with resources(settings) as res, httpx.AsyncClient(timeout=10) as client:
        feedback = Feedback(settings, client, res.publisher)
        runner = Runner(settings, res.queues.feedback, 4, feedback.handle)
        await _serve(settings, runner)


async def _serve(settings: Settings, runner: Runner) -> None:
    metrics.precreate()
    server = None
    if settings.metrics_port:
        server = metrics.serve_worker_endpoints(
            settings.metrics_host, settings.metrics_port, lambda: runner.ready
        )
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
        uvloop.run(run_sender(settings, Provider(provider or "")))
    elif kind == "feedback":
        uvloop.run(run_feedback(settings))
    else:
        raise ValueError(f"unknown worker kind {kind!r}")
