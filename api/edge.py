"""Response hygiene for every route outside the dashboard (which has its own, api.admin):
redirects never name a host the client chose, and the JSON API forbids everything a
browser could do with its answers."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API serves JSON and the OpenAPI document only: no page of it loads anything.
_API_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
]


class EdgeHeaders:
    """Rewrites an absolute `Location` to its path and query, and adds `_API_HEADERS`
    outside /admin.

    Starlette's trailing-slash redirect builds its URL from the request's `Host` header, so
    a forged Host would send the client elsewhere; every redirect pushfan makes stays on
    the host the client already talks to, so a relative Location is always right."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = not scope["path"].startswith("/admin")

        async def hygienic(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if 300 <= message["status"] < 400:
                    headers = [(n, _relative(v) if n == b"location" else v) for n, v in headers]
                if api:
                    names = {name for name, _ in headers}
                    headers = [*headers, *((n, v) for n, v in _API_HEADERS if n not in names)]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, hygienic)


def _relative(location: bytes) -> bytes:
    parts = urlsplit(location.decode("latin-1"))
    if not parts.scheme and not parts.netloc:
        return location
    path = "/" + parts.path.lstrip("/")  # never '//host': that is absolute too
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
