"""Input hygiene: what a request's JSON body and strings must be before anything reads them,
and the short form of every 422. pushfan.api.routing applies it to every route, so no field
carries its own copy of these checks.

- A JSON body holding more than MAX_JSON_VALUES values is refused before it is parsed (the
  bound is counted as the bytes `,` `[` `{`, two C scans), so no parse builds more objects
  than that. Then it must be strict JSON (orjson: no NaN or Infinity, no number beyond a
  double, no invalid UTF-8, no lone surrogate, depth at most 1024), and no string in it,
  key or value, may hold a character PostgreSQL cannot store (U+0000).
- Path, query and form values pass the same string check (`check_strings`).
- A 422 lists at most MAX_ERRORS errors, each its type, location and message, every part
  clipped, never the input (`short_errors`): its size and cost do not depend on the body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

# The largest body the API accepts (a targeted push to 10,000 token objects) holds ~40,000.
MAX_JSON_VALUES = 65_536
MAX_ERRORS = 10
MAX_LOC_PARTS = 8
CLIP_LOC = 64
CLIP_MSG = 200

Loc = Sequence[str | int]


class Refused(HTTPException):
    """A 422 shaped like a validation error: one entry, never the input."""

    def __init__(self, kind: str, loc: Loc, msg: str) -> None:
        super().__init__(422, short_errors([{"type": kind, "loc": tuple(loc), "msg": msg}]))


def unstorable(text: str) -> str | None:
    """Why PostgreSQL (text, jsonb) or a JSON answer cannot hold `text`; None if they can."""
    if "\x00" in text:
        return "NUL (U+0000) cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate is not text"
    return None


def check_strings(values: Iterable[tuple[Loc, str]]) -> None:
    """Refuse the first (location, value) whose value cannot be stored."""
    for loc, value in values:
        reason = unstorable(value)
        if reason is not None:
            raise Refused("string_unstorable", loc, reason)


def parse_json(body: bytes) -> Any:
    """The body as Python values, or Refused: bounded, strict and storable (module doc)."""
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    if values > MAX_JSON_VALUES:
        raise Refused("too_many_values", ("body",), f"over {MAX_JSON_VALUES} JSON values")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused("json_invalid", ("body",), f"not strict JSON: {exc}") from None
    # JSON can only spell U+0000 as this escape: no escape, no walk.
    if b"\\u0000" in body:
        where = _nul_path(parsed)
        if where is not None:
            raise Refused("string_unstorable", where, "NUL (U+0000) cannot be stored")
    return parsed


def _nul_path(value: Any) -> Loc | None:
    """Where the first string holding U+0000 is (object keys included); iterative."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(("body",), value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return loc
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return (*loc, key)
                stack.append(((*loc, key), child))
        elif isinstance(item, list):
            stack.extend(((*loc, n), child) for n, child in enumerate(item))
    return None


def _clip(part: object, limit: int) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)[: limit + 1].encode("utf-8", "replace").decode().replace("\x00", "\\u0000")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_ERRORS errors as {type, loc, msg}, each part clipped, never the input."""
    short: list[dict[str, Any]] = []
    for error in errors:
        if len(short) == MAX_ERRORS:
            break
        loc = [_clip(part, CLIP_LOC) for part in list(error.get("loc", ()))[:MAX_LOC_PARTS]]
        short.append(
            {
                "type": _clip(error.get("type", "invalid"), CLIP_LOC),
                "loc": loc,
                "msg": _clip(error.get("msg", ""), CLIP_MSG),
            }
        )
    return short


async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """The app's handler of RequestValidationError: 422 with `short_errors`."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": short_errors(exc.errors())}, status_code=422)
