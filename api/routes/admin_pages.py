"""The dashboard's pages: sign-in, sign-out (here or everywhere) and the dashboard itself
(server-rendered)."""

from __future__ import annotations

import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pushfan import admins, alerts
from pushfan.api import alerting
from pushfan.api.admin import (
    DEVICE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SignedIn,
    optional_session,
    same_token,
    set_cookie,
    templates,
)
from pushfan.api.deps import Res, client_address
from pushfan.api.routing import GuardedRoute
from pushfan.sessions import Session

router = APIRouter(route_class=GuardedRoute, prefix="/admin", include_in_schema=False)


def _login_page(request: Request, error: str | None, status_code: int) -> Response:
    # Double-submit token for the sign-in form (there is no session to hold one yet).
    token = secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request, "login.html", {"csrf_token": token, "error": error}, status_code=status_code
    )
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, 600, "/admin/login")
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    return _login_page(request, None, 200)


@router.post("/login")
async def login(
    request: Request,
    res: Res,
    # Plain strings, checked here: a validation error would echo the password back.
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return _login_page(request, "The form expired; please sign in again.", 403)
    # The rule that slows guessing without locking the owner out: pushfan.signin.
    address = client_address(request)
    device = request.cookies.get(DEVICE_COOKIE)
    decision, known_device = await res.signin.admit(username[:64], address, device)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after_s))
        response = _login_page(request, f"Too many attempts; try again in {wait} s.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    admin = await admins.authenticate(res.pool, username, password)
    if admin is None:
        return _login_page(request, "Wrong username or password.", 401)
    session_id, _ = await res.sessions.start(admin)
    token = await res.signin.remember(admin.username, address, device if known_device else None)
    response = RedirectResponse("/admin", status_code=303)
    set_cookie(response, request, SESSION_COOKIE, session_id, res.sessions.ttl_s, "/admin")
    known_ttl = res.settings.known_device_ttl_s
    set_cookie(response, request, DEVICE_COOKIE, token, known_ttl, "/admin/login")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
    return response


@router.post("/logout")
async def logout(request: Request, res: Res, current: SignedIn) -> Response:
    await res.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.post("/logout-everywhere")
async def logout_everywhere(request: Request, res: Res, current: SignedIn) -> Response:
    """End every session of this admin, on every browser (this one too)."""
    await admins.end_sessions(res.pool, current.admin_id)
    await res.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    res: Res,
    current: Annotated[Session | None, Depends(optional_session)],
) -> Response:
    if current is None:
        return RedirectResponse("/admin/login", status_code=303)
    context = {
        "username": current.username,
        "can_send": admins.includes(current.role, "sender"),
        "csrf_token": current.csrf_token,
        "apps": res.settings.app_names,
        "history": await alerts.recent(res.pool, alerting.HISTORY),
    }
    return templates.TemplateResponse(request, "dashboard.html", context)
