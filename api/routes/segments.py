"""Saved segments: named audience expressions, usable as `audience.segment` in alerts.
A segment belongs to the key's owner: every key of that owner sees it, no other owner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from pushfan import segments
from pushfan.api.deps import Res, require, require_write
from pushfan.api.models import INVALID, NOT_FOUND, SegmentIn, SegmentName, SegmentOut
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/segments", tags=["segments"], responses=INVALID
)

Sender = Annotated[ApiKey, Depends(require("alerts:send"))]
Writer = Annotated[ApiKey, Depends(require_write("alerts:send"))]
Name = Annotated[SegmentName, Path()]


def segment_out(segment: segments.Segment) -> SegmentOut:
    return SegmentOut(
        name=segment.name,
        description=segment.description,
        filter=segment.filter,
        created_at=segment.created_at.isoformat(),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SegmentOut,
    responses={409: {"description": "a segment of that name exists"}},
)
async def create_segment(body: SegmentIn, res: Res, key: Writer, response: Response) -> SegmentOut:
    try:
        segment = await segments.create(
            res.pool, key.owner, body.name, body.description, body.filter, key.id
        )
    except segments.SegmentExists:
        raise HTTPException(409, f"segment {body.name!r} exists; delete it first") from None
    response.headers["Location"] = f"/v1/segments/{segment.name}"
    return segment_out(segment)


@router.get("", response_model=list[SegmentOut])
async def list_segments(res: Res, key: Sender) -> list[SegmentOut]:
    return [segment_out(s) for s in await segments.all_segments(res.pool, key.owner)]


@router.get("/{name}", response_model=SegmentOut, responses=NOT_FOUND)
async def get_segment(name: Name, res: Res, key: Sender) -> SegmentOut:
    segment = await segments.get(res.pool, key.owner, name)
    if segment is None:
        raise HTTPException(404, "no such segment")
    return segment_out(segment)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_segment(name: Name, res: Res, key: Writer) -> Response:
    if not await segments.delete(res.pool, key.owner, name):
        raise HTTPException(404, "no such segment")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
