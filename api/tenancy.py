"""What an API key may reach: the apps it is bound to, the alerts its owner made.

A request naming an app the key is not bound to is refused (403, naming the apps); an
alert or device the key may not see answers 404, as an unknown id does, so ids of other
tenants cannot be probed. An audience without apps means every app of the key, never more.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from fastapi import HTTPException, status

from pushfan import alerts
from pushfan.apikeys import ApiKey
from pushfan.messages import AudienceFilter


def check_apps(key: ApiKey, apps: Iterable[str], configured: list[str]) -> None:
    """422 for apps the deployment does not have, then 403 for apps the key is not bound to."""
    named = set(apps)
    unknown = sorted(named - set(configured))
    if unknown:
        raise HTTPException(422, f"unknown app(s): {', '.join(unknown)}"[:300])
    outside = key.outside(named)
    if outside:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this API key is not bound to app(s): {', '.join(outside)}"[:300],
        )


def key_apps(key: ApiKey, configured: list[str]) -> list[str]:
    """The deployment's apps this key is bound to; [] (every app) for an all-apps key."""
    if key.all_apps:
        return []
    apps = sorted(set(key.apps) & set(configured))
    if not apps:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "this API key is bound to no app of this deployment"
        )
    return apps


def scoped(key: ApiKey, audience: AudienceFilter, configured: list[str]) -> AudienceFilter:
    """The audience as the key may send it: its apps checked, or the key's apps if none."""
    check_apps(key, audience.apps, configured)
    if audience.apps:
        return audience
    return msgspec.structs.replace(audience, apps=key_apps(key, configured))


def visible(key: ApiKey, alert: alerts.Alert) -> bool:
    return key.sees(alert.owner, alert.audience_filter.apps)


def device_apps(key: ApiKey) -> list[str] | None:
    """The apps whose devices the key may act on; None for every app."""
    return None if key.all_apps else list(key.apps)
