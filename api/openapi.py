"""The OpenAPI document: FastAPI's, plus the bearer security scheme and, for every /v1
operation, each answer it can give besides its own (400, 401, 403, 404, 413, 422, 429, 503).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

SCHEME = "bearer"
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ANSWERS = {
    400: "malformed request (body, headers or encoding)",
    401: "no API key, an unknown one, or an expired one",
    403: "the key was revoked, lacks the scope, or is not bound to an app the request names",
    404: "not found, or not visible to this key (another owner's, or another app's)",
    413: "request body over the size limit",
    422: "not acceptable; `detail` says why",
    429: "rate limit of this client address or API key reached (see Retry-After)",
    503: "a dependency (database, broker, Redis) is down; retry after Retry-After",
}


def _limited(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "limited", False):
            return True
        stack.extend(dep.dependencies)
    return False


def answers(route: APIRoute, method: str) -> list[int]:
    """The status codes (other than its success) a /v1 operation can answer."""
    codes = [400, 401, 403, 422, 503]
    if "{" in route.path:
        codes.append(404)
    if method not in ("GET", "HEAD"):  # the body limit applies to any request with a body
        codes.append(413)
    if _limited(route):
        codes.append(429)
    return sorted(codes)


def document(app: FastAPI, routes: Iterable[object]) -> None:
    """Make `app.openapi()` serve the completed document (built once, on first request)."""
    api_routes = [
        r
        for r in routes
        if isinstance(r, APIRoute) and r.include_in_schema and r.path[:4] == "/v1/"
    ]

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key, `pf_<id>_<secret>` (`pushfan keys create`)",
        }
        for route in api_routes:
            for method in route.methods or ():
                operation = schema["paths"][route.path][method.lower()]
                operation["security"] = [{SCHEME: []}]
                responses = operation.setdefault("responses", {})
                for code in answers(route, method):
                    responses.setdefault(
                        str(code),
                        {
                            "description": _ANSWERS[code],
                            "content": {"application/json": {"schema": _PROBLEM}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
