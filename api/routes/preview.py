"""The dry run: POST /v1/alerts:preview answers what POST /v1/alerts would do, sending and
storing nothing: the audience per provider, app and locale, the rendered payloads and their
sizes, a credentials check per app involved, and the predicted duration."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query

from pushfan import credentials, localization, payloads, preview, trigger, user_lists
from pushfan.api import alerting, tenancy
from pushfan.api.deps import ApiResources, Res, require_trigger
from pushfan.api.models import (
    INVALID,
    AlertCreate,
    AudienceBucket,
    CredentialCheck,
    PayloadPreview,
    PreviewOut,
)
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey
from pushfan.messages import AudienceFilter, Notification
from pushfan.payloads import MAX_PAYLOAD_BYTES

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/alerts", tags=["alerts"], responses=INVALID
)

FCM_SAMPLE = 3  # real tokens per app sent to FCM with validate_only


async def check_credentials(
    res: ApiResources,
    audience: AudienceFilter,
    notification: Notification,
    apps: set[tuple[str, str]],
) -> list[CredentialCheck]:
    """One check per (provider, app) of the audience, the FCM ones concurrently. Web Push
    has nothing to fetch or validate before sending (its VAPID key signs locally): no check."""
    checks: list[credentials.Check] = []
    default = localization.for_locale(notification, localization.DEFAULT)
    fcm: list[asyncio.Task[credentials.Check]] = []
    http = credentials.client(res.settings)
    try:
        for provider, name in sorted(apps):
            app = res.settings.app(name)
            if app is None:  # a device of an app no longer configured
                checks.append(credentials.Check(name, provider, False, "app not configured"))
            elif provider == "apns":
                checks.append(credentials.check_apns(app))
            elif provider == "fcm":
                tokens = await preview.sample_tokens(
                    res.pool, audience, name, "android", FCM_SAMPLE
                )
                fcm.append(
                    asyncio.create_task(
                        credentials.check_fcm(
                            http,
                            res.settings,
                            app,
                            tokens,
                            lambda t: payloads.fcm_message(default, t),
                        )
                    )
                )
        checks += await asyncio.gather(*fcm)
    finally:
        await http.close()
    return [
        CredentialCheck(
            app=c.app,
            provider=c.provider,
            ok=c.ok,
            detail=c.detail,
            validated_tokens=c.validated_tokens,
            unregistered_tokens=c.unregistered_tokens,
        )
        for c in sorted(checks, key=lambda c: (c.provider, c.app))
    ]


@router.post(":preview", response_model=PreviewOut)
async def preview_alert(
    body: AlertCreate,
    res: Res,
    key: Annotated[ApiKey, Depends(require_trigger("alerts:send"))],
    check: Annotated[bool, Query(alias="credentials")] = True,
) -> PreviewOut:
    """What `POST /v1/alerts` with this body would send, now; `?credentials=false` skips the
    calls to the providers' token endpoints and FCM."""
    segment_filter = await alerting.resolve_segment(res, key.owner, body.audience.segment)
    alert_in = body.alert_in(segment_filter)
    alert_in = replace(
        alert_in, audience=tenancy.scoped(key, alert_in.audience, res.settings.app_names)
    )
    try:
        trigger.check(alert_in, res.settings.app_names)
        await user_lists.check_usable(res.pool, key.owner, alert_in.audience)
    except (trigger.Invalid, user_lists.ListError) as exc:
        raise HTTPException(422, str(exc)) from None
    audience = msgspec.structs.replace(alert_in.audience, as_of=time.time())
    started = time.perf_counter()
    buckets = await preview.breakdown(res.pool, audience)
    count_ms = round((time.perf_counter() - started) * 1000, 1)
    notification = Notification(
        title=alert_in.title,
        body=alert_in.body,
        data=alert_in.data,
        priority="high" if alert_in.priority == "high" else "normal",
        expires_at=int(time.time()) + alert_in.ttl_s,
        collapse_id="0" * 36,
        extras=alert_in.extras,
    )
    providers = {b.provider for b in buckets}
    checks = []
    if check:
        apps = {(b.provider, b.app) for b in buckets}
        checks = await check_credentials(res, audience, notification, apps)
    seconds = preview.predicted_seconds(res.settings, buckets)
    return PreviewOut(
        audience=sum(b.devices for b in buckets),
        count_ms=count_ms,
        by=[
            AudienceBucket(provider=b.provider, app=b.app, locale=b.locale, devices=b.devices)
            for b in buckets
        ],
        payloads=[
            PayloadPreview(
                provider=r.provider,
                locale=locale or None,
                bytes=r.bytes,
                limit=MAX_PAYLOAD_BYTES,
                payload=r.payload,
            )
            for locale, variant in localization.variants(notification)
            for r in preview.rendered(variant, providers)
        ],
        credentials=checks,
        seconds=max(seconds.values(), default=0.0),
        seconds_per_provider=seconds,
    )
