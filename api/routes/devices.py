"""Device registration: register or refresh (idempotent), and removal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from pushfan import registry
from pushfan.api import tenancy
from pushfan.api.deps import Res, require_write
from pushfan.api.models import INVALID, NOT_FOUND, TOKEN_FORMATS, DeviceOut, DeviceRegistration
from pushfan.apikeys import ApiKey

router = APIRouter(prefix="/v1/devices", tags=["devices"], responses=INVALID)


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
    pattern, rule = TOKEN_FORMATS[body.platform]
    if not pattern.match(body.token):
        raise HTTPException(422, f"bad token: {rule}")
    if body.app not in res.settings.app_names:
        raise HTTPException(422, f"unknown app {body.app!r}")
    tenancy.check_apps(key, [body.app], res.settings.app_names)
    token = body.token.lower() if body.platform == "ios" else body.token
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
