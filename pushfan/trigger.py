"""Accepting an alert: the one code path behind POST /v1/alerts, POST /v1/notifications
and the dashboard's Send Global Alert button.

Checks what can be checked before anything is stored (apps exist, payloads fit), writes
the alert idempotently, then publishes one expansion message with confirms: a plan for a
global alert (the expander cuts it into shards, so the cost does not depend on the audience)
or the explicit target list of a targeted push.

A retry with the same Idempotency-Key publishes the message again unless the progress ledger
says it was published: the first attempt may have been refused by the broker, or died
between its write and its publish. The mark is in Redis, not on the alert's row, so the
trigger makes one synchronous PostgreSQL commit, not two; if Redis lost it, a retry
publishes a second copy, which is harmless (the expander's ledger plans an alert once and
re-expansion makes the same batch ids).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from pushfan import alerts, localization, metrics, payloads, user_lists, webpush
from pushfan.alerts import Alert, AlertIn, IdempotencyConflict
from pushfan.apikeys import DASHBOARD_OWNER
from pushfan.messages import ExpandTask, Notification, encode
from pushfan.progress import Progress
from pushfan.publisher import Publisher
from pushfan.topology import QueueNames

log = logging.getLogger(__name__)

MAX_SCHEDULE_AHEAD_S = 30 * 24 * 3600  # `send_at` at most 30 days ahead

__all__ = ["IdempotencyConflict", "Invalid", "NotQueued", "Trigger", "check"]


class Invalid(ValueError):
    """The alert cannot be accepted as asked; the message says why (a 422)."""


class BadSchedule(Invalid):
    """`send_at` is past or too far ahead. A retry of a request that was accepted earlier
    (same Idempotency-Key and body) still gets its alert, even once send_at has passed."""


class NotQueued(RuntimeError):
    """Stored but the broker did not confirm it; a retry with the same key republishes."""


def check(alert: AlertIn, app_names: list[str]) -> None:
    """Refuse what would fail later: unknown apps, reserved data keys, payloads over the
    providers' limit (in every locale of the message)."""
    apps = set(alert.audience.apps)
    if alert.targets is not None:
        apps |= {t.app for t in alert.targets.tokens} | {u.app for u in alert.targets.user_ids}
    unknown = apps - set(app_names)
    if unknown:
        raise Invalid(f"unknown app(s): {', '.join(sorted(unknown))}")
    if alert.send_at is not None:
        check_send_at(alert.send_at, time.time())
    reserved = payloads.reserved_data_key(alert.data)
    if reserved:
        raise Invalid(reserved)
    # Rendered as the senders will (overrides merged), with a collapse id as long as the
    # real one (a UUID) and the longest expiry.
    probe = Notification(
        title=alert.title,
        body=alert.body,
        data=alert.data,
        priority="high" if alert.priority == "high" else "normal",
        expires_at=int(time.time()) + alert.ttl_s,
        collapse_id="0" * 36,
        extras=alert.extras,
    )
    for locale, variant in localization.variants(probe):
        reason = payloads.oversize_reason(variant) or webpush.oversize_reason(variant)
        if reason:
            raise Invalid(f"{reason} (locale {locale})" if locale else reason)


def check_send_at(send_at: datetime, now: float) -> None:
    """A schedule must be in the future and at most 30 days ahead."""
    ahead = send_at.timestamp() - now
    if ahead <= 0:
        raise BadSchedule("send_at is in the past")
    if ahead > MAX_SCHEDULE_AHEAD_S:
        raise BadSchedule("send_at is more than 30 days ahead")


def expand_task(alert: Alert) -> tuple[ExpandTask, str]:
    """The alert's one expansion message and its message id. Relative filters (last_seen)
    count from the alert's creation (a scheduled alert's: its `send_at`), so every shard,
    and a re-expansion, sees one cut-off."""
    if alert.targets is not None:
        task = ExpandTask(
            alert_id=alert.id,
            kind="targets",
            audience=alert.audience_filter,
            notification=alert.notification(),
            shard=0,
            targets=alert.targets,
        )
        return task, f"{alert.id}:targets"
    as_of = (alert.send_at or alert.created_at).timestamp()
    audience = msgspec.structs.replace(alert.audience_filter, as_of=as_of)
    task = ExpandTask(
        alert_id=alert.id,
        kind="plan",
        audience=audience,
        notification=alert.notification(),
        canary=alert.canary,
    )
    return task, f"{alert.id}:plan"


async def queued_task(pool: asyncpg.Pool, alert: Alert) -> tuple[ExpandTask, str]:
    """expand_task, with a global alert's inline user ids (and excluded ones) stored as the
    alert's own lists (pushfan.user_lists) and referenced by id, so no expansion message
    carries them. The trigger and the scheduler publish this; storing is idempotent."""
    task, message_id = expand_task(alert)
    audience = task.audience
    if task.kind != "plan" or not (audience.user_ids or audience.exclude_user_ids):
        return task, message_id
    changes: dict[str, object] = {}
    for kind, listed in (("user_ids", "user_list"), ("exclude_user_ids", "exclude_user_list")):
        ids = getattr(audience, kind)
        if ids:
            changes[kind] = []
            changes[listed] = await user_lists.store_for_alert(
                pool, alert.id, alert.owner, kind, ids
            )
    audience = msgspec.structs.replace(audience, **changes)
    return msgspec.structs.replace(task, audience=audience), message_id


@dataclass(frozen=True)
class Trigger:
    pool: asyncpg.Pool
    publisher: Publisher
    progress: Progress
    queues: QueueNames
    app_names: list[str]

    async def submit(
        self, alert_in: AlertIn, idempotency_key: str | None, created_by: str, owner: str
    ) -> tuple[Alert, bool]:
        """Store and queue the alert, once per (created_by, idempotency key); returns (alert,
        created). `owner` is who may see it (pushfan.apikeys.ApiKey.sees).

        Raises Invalid, IdempotencyConflict or NotQueued; nothing is queued on Invalid.
        """
        try:
            check(alert_in, self.app_names)
        except BadSchedule:
            earlier = await alerts.accepted_before(self.pool, alert_in, idempotency_key, created_by)
            if earlier is None:
                raise
            return earlier, False
        try:
            await user_lists.check_usable(
                self.pool, None if owner == DASHBOARD_OWNER else owner, alert_in.audience
            )
        except user_lists.ListError as exc:
            raise Invalid(str(exc)) from None
        alert, created = await alerts.create(
            self.pool, alert_in, idempotency_key, created_by, owner
        )
        # A scheduled alert is published by the workers' scheduler at its time, not here.
        if alert.send_at is None and (created or await self._unpublished(alert)):
            task, message_id = await queued_task(self.pool, alert)
            try:
                await self.publisher.publish(self.queues.expand, encode(task), message_id)
            except Exception as exc:
                log.exception("could not publish alert %s", alert.id)
                raise NotQueued(alert.id) from exc
            await self.progress.mark_published(alert.id)
        if created:
            metrics.ALERTS_CREATED.inc()
            log.info(
                "%s alert %s created by %s%s",
                alert.kind,
                alert.id,
                created_by,
                f", scheduled for {alert.send_at.isoformat()}" if alert.send_at else "",
            )
        return alert, created

    async def _unpublished(self, alert: Alert) -> bool:
        if alert.finished_at is not None or alert.status == "cancelled":
            return False
        return not await self.progress.published(alert.id)
