"""The few RSGI helpers both simulators share."""

from __future__ import annotations

from typing import Any

import orjson
from granian.rsgi import Headers, HTTPProtocol, Scope

JSON = "application/json; charset=UTF-8"

__all__ = ["HTTPProtocol", "Headers", "Scope", "bearer", "send_json"]


def send_json(
    proto: HTTPProtocol,
    status: int,
    body: Any,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    proto.response_bytes(status, [("content-type", JSON), *(headers or ())], orjson.dumps(body))


def bearer(scope: Scope) -> str | None:
    """The credential of an `authorization: bearer ...` header (scheme case-insensitive)."""
    value: str | None = scope.headers.get("authorization")
    if not value or len(value) < 8 or value[:7].lower() != "bearer ":
        return None
    return value[7:].strip() or None
