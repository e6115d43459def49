"""Dashboard plumbing: who is signed in (server-side session cookie, checked against the
admin's session epoch), what their role allows, the CSRF check and the write limits of
POSTs, templates, and the security headers of every /admin response."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushfan import admins
from pushfan.api.deps import ApiResources, Res, client_address, too_many
from pushfan.api.routing import before_body
from pushfan.sessions import Session

SESSION_COOKIE = "pushfan_session"
LOGIN_CSRF_COOKIE = "pushfan_login_csrf"
DEVICE_COOKIE = "pushfan_device"  # known-device mark for sign-in (pushfan.signin)
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
        secure=res.settings.cookies_secure,
    )


async def optional_session(request: Request, res: Res) -> Session | None:
    """The signed-in session, if its admin still exists with the epoch it started under;
    its role is the admin's current one."""
    cookie = request.cookies.get(SESSION_COOKIE)
    found = await res.sessions.get(cookie)
    if found is None:
        return None
    admin = await admins.get(res.pool, found.admin_id)
    if admin is None or admin.session_epoch != found.epoch:
        await res.sessions.end(cookie or "")
        return None
    return replace(found, role=admin.role)


async def _signed_in(request: Request) -> Session:
    found = await optional_session(request, request.app.state.resources)
    if found is None:
        raise HTTPException(401, "sign in to the dashboard first")
    return found


# Checked from the cookie alone, before the body is read (pushfan.api.routing).
session = before_body(_signed_in, "admin-session")


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


def role(required: str) -> Callable[..., Awaitable[Session]]:
    """A session whose admin's role includes `required` (403 otherwise)."""

    async def check(current: AdminSession) -> Session:
        if not admins.includes(current.role, required):
            raise HTTPException(403, f"this needs the {required!r} role")
        return current

    check.role = required  # type: ignore[attr-defined]  # read by the tenancy matrix test
    return check


def writer(required: str) -> Callable[..., Awaitable[Session]]:
    """A dashboard write: CSRF token, the role, and the per-address and per-admin limits."""
    has_role = role(required)

    async def check(request: Request, current: CsrfSession) -> Session:
        await has_role(current)
        res: ApiResources = request.app.state.resources
        decision = await res.address_limiter.hit(f"address:{client_address(request)}")
        if not decision.allowed:
            raise too_many(decision, "client address")
        decision = await res.write_limiter.hit(f"admin:{current.admin_id}")
        if not decision.allowed:
            raise too_many(decision, "admin")
        return current

    check.role = required  # type: ignore[attr-defined]
    return check


Viewer = Annotated[Session, Depends(role("viewer"))]
Sender = Annotated[Session, Depends(writer("sender"))]
SignedIn = Annotated[Session, Depends(writer("viewer"))]  # any role: sign-out and the like
