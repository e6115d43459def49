"""Send batches from a stream of targets: the expander's shards and targeted pushes share it.

Targets are grouped per (provider, app, locale) into batches of at most `batch_size` (web targets
also per push-service origin, so a batch reuses one origin's connections and takes from its
rate limit), each published with confirms as soon as it is full, with at most
MAX_UNCONFIRMED publishes awaiting their confirm (bounding memory). Batch ids are
`alert:shard:provider:app:seq` (seq counted per (provider, app) across origins and locales; provider
is `apns-sandbox` for APNs sandbox batches: batches are per APNs environment too), the same
on every re-expansion of the same targets in the same order. A localized message is
resolved to the batch's locale: each batch carries one language, rendered once by the
sender.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from types import TracebackType

from pushfan import localization, registry, webpush
from pushfan.messages import ExpandTask, Notification, SendBatch, encode
from pushfan.provider import PLATFORM_PROVIDER, Provider
from pushfan.publisher import Publisher
from pushfan.topology import QueueNames

MAX_UNCONFIRMED = 16  # batches awaiting broker confirms at once
Lane = tuple[Provider, str, str, str]  # provider, app, lane, locale


class Batcher:
    """`async with Batcher(...) as b: await b.add(page)`; on a clean exit the partial batches
    are flushed and every confirm awaited, on an error the pending publishes are cancelled
    (the message is then redelivered and re-expanded, with the same batch ids)."""

    def __init__(
        self, publisher: Publisher, queues: QueueNames, batch_size: int, task: ExpandTask
    ) -> None:
        self._publisher = publisher
        self._queues = queues
        self._size = batch_size
        self._task = task
        # (provider, app, lane, locale): lane is the origin of a web target, the APNs
        # environment of an iOS one ("production" or "sandbox"), "" for FCM; locale the
        # message's locale the device matched (pushfan.localization), "" for the default.
        self._buffers: dict[Lane, list[registry.Target]] = defaultdict(list)
        self._locales = localization.locales_of(task.notification)
        self._rendered: dict[str, Notification] = {}
        self._sequence: dict[tuple[str, str], int] = defaultdict(int)
        self._unconfirmed: set[asyncio.Task[None]] = set()

    async def add(self, targets: Iterable[registry.Target]) -> None:
        for target in targets:
            provider = PLATFORM_PROVIDER[target.platform]
            lane = ""
            if provider is Provider.WEB:
                lane = webpush.origin_of(target.token)
            elif provider is Provider.APNS:
                lane = target.environment
            locale = localization.best_match(target.locale, self._locales)
            key = (provider, target.app, lane, locale)
            buffer = self._buffers[key]
            buffer.append(target)
            if len(buffer) >= self._size:
                await self._flush(key)

    def _notification(self, locale: str) -> Notification:
        """The task's notification in one locale, resolved once per expansion."""
        rendered = self._rendered.get(locale)
        if rendered is None:
            rendered = localization.for_locale(self._task.notification, locale)
            self._rendered[locale] = rendered
        return rendered

    async def _flush(self, key: Lane) -> None:
        targets = self._buffers.pop(key)
        provider, app, lane, locale = key
        environment = lane if provider is Provider.APNS else "production"
        name = provider if environment == "production" else f"{provider}-{environment}"
        seq = self._sequence[name, app]
        self._sequence[name, app] += 1
        task = self._task
        batch = SendBatch(
            alert_id=task.alert_id,
            batch_id=f"{task.alert_id}:{task.shard}:{name}:{app}:{seq}",
            provider=provider,
            app=app,
            notification=self._notification(locale),
            device_ids=[t.id for t in targets],
            tokens=[t.token for t in targets],
            environment=environment,  # type: ignore[arg-type]
            canary=task.canary,
        )
        while len(self._unconfirmed) >= MAX_UNCONFIRMED:
            done, _ = await asyncio.wait(self._unconfirmed, return_when=asyncio.FIRST_COMPLETED)
            self._unconfirmed.difference_update(done)
            for finished in done:
                finished.result()  # a refused publish fails the whole expansion
        publish = self._publisher.publish(
            self._queues.send[provider], encode(batch), batch.batch_id
        )
        self._unconfirmed.add(asyncio.create_task(publish))

    async def __aenter__(self) -> Batcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                for key in list(self._buffers):
                    await self._flush(key)
                if self._unconfirmed:
                    await asyncio.gather(*self._unconfirmed)
                return
            except BaseException:
                self._cancel()
                raise
        self._cancel()

    def _cancel(self) -> None:
        for pending in self._unconfirmed:
            pending.cancel()
