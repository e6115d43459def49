"""Device registration: register or refresh (idempotent), mark seen, and removal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from pushfan import registry
from pushfan.api import tenancy
from pushfan.api.deps import Res, require_write
from pushfan.api.models import (
    INVALID,
    NOT_FOUND,
    DeviceOut,
    DeviceRegistration,
)
from pushfan.api.routing import GuardedRoute
from pushfan.api.subscriptions import web_subscription
from pushfan.apikeys import ApiKey

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/devices", tags=["devices"], responses=INVALID
)


Writer = Annotated[ApiKey, Depends(require_write("devices:write"))]


@router.post(
    "",
    response_model=DeviceOut,
    status_code=status.HTTP_200_OK,
    responses={201: {"model": DeviceOut, "description": "registered"}},
)
async def register_device(
    body: DeviceRegistration, res: Res, response: Response, key: Writer
) -> DeviceOut:
    if body.subscription is not None:
        token, web = web_subscription(body.subscription, res.settings)
    else:
        # DeviceRegistration checks one or the other, and normalises the token (registry).
        assert body.token is not None
        token, web = body.token, {}
    if body.app not in res.settings.app_names:
        raise HTTPException(422, f"unknown app {body.app!r}")
    tenancy.check_apps(key, [body.app], res.settings.app_names)
    registered = await registry.upsert(
        res.pool,
        registry.DeviceIn(
            platform=body.platform,
            app=body.app,
            token=token,
            user_id=body.user_id,
            tags=body.tags,
            locale=body.locale,
            time_zone=body.time_zone,
            app_version=body.app_version,
            os_version=body.os_version,
            attributes=body.attributes,
            **web,
            apns_environment=body.apns_environment,
        ),
        key.owner,
    )
    if registered is None:
        raise HTTPException(403, "this token is registered by another owner for another user")
    device_id, created = registered
    if created:
        response.status_code = status.HTTP_201_CREATED
    return DeviceOut(id=device_id, created=created)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_device(
    device_id: Annotated[int, Path(ge=1, le=2**63 - 1)], res: Res, key: Writer
) -> Response:
    apps = tenancy.device_apps(key)
    if not await registry.delete(res.pool, device_id, owner=key.owner, apps=apps):
        raise HTTPException(404, "no such device")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{device_id}/seen", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def device_seen(
    device_id: Annotated[int, Path(ge=1, le=2**63 - 1)], res: Res, key: Writer
) -> Response:
    """The app was opened: refresh `last_seen` (what the stale-token policy and `last_seen`
    filters read) without re-sending the registration. Scoped like DELETE."""
    apps = tenancy.device_apps(key)
    if not await registry.seen(res.pool, device_id, owner=key.owner, apps=apps):
        raise HTTPException(404, "no such device")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
