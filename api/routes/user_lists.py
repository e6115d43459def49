"""User lists: many users for an audience, uploaded in chunks and referenced by id
(`audience.user_list`, `audience.exclude_user_list`) instead of carried in the alert's
body. A list belongs to the key's owner: every key of that owner may use it, no other
owner sees it (404, as for an unknown id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status

from pushfan import user_lists
from pushfan.api.deps import Res, require, require_write
from pushfan.api.models import INVALID, NOT_FOUND, ListId, UserListIn, UserListOut
from pushfan.api.routing import GuardedRoute
from pushfan.apikeys import ApiKey

router = APIRouter(
    route_class=GuardedRoute, prefix="/v1/user-lists", tags=["user lists"], responses=INVALID
)

Sender = Annotated[ApiKey, Depends(require("alerts:send"))]
Writer = Annotated[ApiKey, Depends(require_write("alerts:send"))]
Id = Annotated[ListId, Path()]
CONFLICT: dict[int | str, dict[str, str]] = {
    404: {"description": "no such user list"},
    409: {"description": "the list is complete (append), or in use (delete)"},
}
UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"schema": {"type": "string"}, "example": "u1\nu2\nu3\n"}},
    }
}


def list_out(found: user_lists.UserList | None) -> UserListOut:
    """The list as answered; 404 for None (none of the caller's)."""
    if found is None:
        raise HTTPException(404, "no such user list")
    return UserListOut(
        id=found.id,
        name=found.name,
        users=found.users,
        complete=found.complete,
        created_at=found.created_at.isoformat(),
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserListOut)
async def create_list(body: UserListIn, res: Res, key: Writer, response: Response) -> UserListOut:
    """An empty list: append its user ids, then complete it."""
    made = await user_lists.create(res.pool, key.owner, body.name, key.id)
    response.headers["Location"] = f"/v1/user-lists/{made.id}"
    return list_out(made)


@router.get("/{list_id}", response_model=UserListOut, responses=NOT_FOUND)
async def get_list(list_id: Id, res: Res, key: Sender) -> UserListOut:
    return list_out(await user_lists.get(res.pool, key.owner, list_id))


@router.post(
    "/{list_id}/users", response_model=UserListOut, responses=CONFLICT, openapi_extra=UPLOAD
)
async def append_users(list_id: Id, request: Request, res: Res, key: Writer) -> UserListOut:
    """Add user ids: a `text/plain` body, one id per line (duplicates count once). Send as
    many requests as the body size limit needs; each is kept whole or not at all."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "text/plain":
        raise HTTPException(415, "send the user ids as text/plain, one per line")
    try:
        return list_out(
            await user_lists.append(
                res.pool, key.owner, list_id, user_lists.id_chunks(request.stream())
            )
        )
    except user_lists.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except user_lists.Completed as exc:
        raise HTTPException(409, str(exc)) from None
    except user_lists.ListError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/{list_id}/complete", response_model=UserListOut, responses=NOT_FOUND)
async def complete_list(list_id: Id, res: Res, key: Writer) -> UserListOut:
    """No more changes: the list may now be used in alerts."""
    return list_out(await user_lists.complete(res.pool, key.owner, list_id))


@router.delete("/{list_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
async def delete_list(list_id: Id, res: Res, key: Writer) -> Response:
    try:
        deleted = await user_lists.delete(res.pool, key.owner, list_id)
    except user_lists.InUse as exc:
        raise HTTPException(409, str(exc)) from None
    if not deleted:
        raise HTTPException(404, "no such user list")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
