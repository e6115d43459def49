"""Dashboard plumbing: who is signed in (server-side session cookie), the CSRF check for
POSTs, templates, and the security headers of every /admin response."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushfan.api.deps import Res
from pushfan.sessions import Session

SESSION_COOKIE = "pushfan_session"
LOGIN_CSRF_COOKIE = "pushfan_login_csrf"
CSRF_HEADER = "X-CSRF-Token"

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# No inline script or style anywhere, so the policy can forbid them: injected markup
# cannot run. frame-ancestors stops clickjacking of the Send button.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class AdminHeaders:
    """Adds the security headers above to every response under /admin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/admin"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in _HEADERS if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, path: str
) -> None:
    res: Res = request.app.state.resources
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        # Plain HTTP only on a developer's loopback; everywhere else the cookie needs TLS.
        secure=res.settings.environment != "development",
    )


async def optional_session(request: Request, res: Res) -> Session | None:
    return await res.sessions.get(request.cookies.get(SESSION_COOKIE))


async def session(
    found: Annotated[Session | None, Depends(optional_session)],
) -> Session:
    if found is None:
        raise HTTPException(401, "sign in to the dashboard first")
    return found


AdminSession = Annotated[Session, Depends(session)]


def same_token(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


async def csrf_checked(request: Request, current: AdminSession) -> Session:
    """A session whose POST carries its CSRF token (header from JS, field from forms)."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()
        field = form.get("csrf_token")
        presented = field if isinstance(field, str) else None
    if not same_token(current.csrf_token, presented):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page")
    return current


CsrfSession = Annotated[Session, Depends(csrf_checked)]
