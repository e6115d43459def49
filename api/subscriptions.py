"""Web Push subscriptions as the API takes them: a registration's PushSubscription, and a
targeted push's web target, checked the same way (pushfan.webpush) against the settings'
allowlist; a 422 says why one is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from pushfan import webpush
from pushfan.api.models import TokenTargetIn, WebSubscription
from pushfan.settings import Settings


def web_subscription(sub: WebSubscription, settings: Settings) -> tuple[str, dict[str, Any]]:
    """(token, extra DeviceIn fields) of a checked PushSubscription, or a 422 saying why."""
    try:
        checked = webpush.parse(
            sub.endpoint,
            sub.keys.p256dh,
            sub.keys.auth,
            settings.web_push_allowed_hosts,
            settings.web_push_dev_hosts,
        )
    except webpush.SubscriptionRefused as exc:
        raise HTTPException(422, f"bad subscription: {exc}") from None
    expires = None
    if sub.expiration_time is not None:
        expires = datetime.fromtimestamp(sub.expiration_time / 1000, UTC)
        if expires <= datetime.now(UTC):
            raise HTTPException(422, "bad subscription: it has expired")
    return checked.endpoint, {"push_keys": checked.keys, "subscription_expires_at": expires}


def web_target_token(target: TokenTargetIn, settings: Settings) -> str:
    """A web target's endpoint, normalised as at registration (the registry's token), or a
    422 saying why it could never have been registered."""
    if target.subscription is not None:
        endpoint, _ = web_subscription(target.subscription, settings)
        return endpoint
    assert target.token is not None  # TokenTargetIn: one of the two
    try:
        return webpush.check_endpoint(
            target.token, settings.web_push_allowed_hosts, settings.web_push_dev_hosts
        )
    except webpush.SubscriptionRefused as exc:
        raise HTTPException(422, f"bad web target: {exc}") from None
