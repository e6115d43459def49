"""Will an app's credentials work? Checked by the dry run (POST /v1/alerts:preview), before
anything is sent.

- APNs: the ES256 provider token (JWT) is minted from the app's .p8 key.
- FCM: an OAuth2 access token is fetched from the service account's token endpoint (the
  JWT-bearer grant), then FCM HTTP v1 is asked to `validate_only` the rendered message for a
  sample of real tokens of the audience: a wrong project, a revoked account or a key FCM
  does not accept shows up here. Tokens FCM calls UNREGISTERED are counted, not an error.

Requests go over HTTP/2 (pyreqwest, ALPN h2), as the senders' do. Answers are reported by
status and error code only, never with a key or a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
import orjson
from pyreqwest.client import Client, ClientBuilder

from pushfan.provider_tokens import ServiceAccount, apns_provider_token
from pushfan.settings import AppConfig, Settings

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    app: str
    provider: str
    ok: bool
    detail: str
    validated_tokens: int = 0
    unregistered_tokens: int = 0


def client(settings: Settings) -> Client:
    builder = (
        ClientBuilder()
        .http2_prior_knowledge()
        .timeout(timedelta(seconds=TIMEOUT_S))
        .connect_timeout(timedelta(seconds=TIMEOUT_S))
    )
    if settings.ca_file is not None:
        builder = builder.add_root_certificate_pem(settings.ca_file.read_bytes())
    return builder.build()


def check_apns(app: AppConfig) -> Check:
    if not app.has_apns:
        return Check(app.name, "apns", False, "no APNs key configured for this app")
    if not (app.apns_key_id and app.apns_team_id):  # a certificate app: no token to sign
        return Check(app.name, "apns", False, "no APNs token key (key id, team id) for this app")
    try:
        apns_provider_token(app.apns_key_pem(), app.apns_key_id, app.apns_team_id, time.time())
    except (OSError, ValueError, TypeError, jwt.PyJWTError) as exc:
        return Check(
            app.name, "apns", False, f"cannot sign the provider token: {type(exc).__name__}"
        )
    return Check(app.name, "apns", True, "provider token (ES256 JWT) minted")


async def _post(
    http: Client, url: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, Any]:
    request = http.post(url).headers(headers).body_bytes(body).build()
    response = await request.send()
    content = bytes(await response.bytes())
    try:
        return response.status, orjson.loads(content)
    except orjson.JSONDecodeError:
        return response.status, None


def _error_code(body: Any) -> str:
    """Google's error code from an OAuth or FCM error body ('invalid_grant', 'UNREGISTERED')."""
    if not isinstance(body, dict):
        return "no JSON body"
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and detail.get("errorCode"):
                return str(detail["errorCode"])
        return str(error.get("status", "unknown"))
    return "unknown"


async def _access_token(http: Client, settings: Settings, app: AppConfig) -> tuple[str | None, str]:
    try:
        account = ServiceAccount.parse(app.fcm_service_account_json())
        token_url = settings.fcm_token_url or account.token_uri
        fields = account.token_form(token_url, int(time.time()))
    except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
        return None, f"service account unusable: {type(exc).__name__}"
    form = urlencode(fields).encode()
    headers = [("content-type", "application/x-www-form-urlencoded")]
    status, body = await _post(http, token_url, headers, form)
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        return None, f"token endpoint refused the service account: {status} {_error_code(body)}"
    return str(body["access_token"]), "access token fetched"


async def check_fcm(
    http: Client,
    settings: Settings,
    app: AppConfig,
    sample_tokens: Sequence[str],
    message_for: Callable[[str], dict[str, Any]],
) -> Check:
    """`message_for(token)` is the FCM request body the senders would post for that token."""
    if not app.has_fcm:
        return Check(app.name, "fcm", False, "no FCM service account configured for this app")
    try:
        token, detail = await _access_token(http, settings, app)
        if token is None:
            return Check(app.name, "fcm", False, detail)
        url = f"{settings.fcm_base_url.rstrip('/')}/v1/projects/{app.fcm_project_id}/messages:send"
        headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
        valid = unregistered = 0
        for device_token in sample_tokens:
            body = {**message_for(device_token), "validate_only": True}
            status, answer = await _post(http, url, headers, orjson.dumps(body))
            if status == 200:
                valid += 1
            elif status == 404 and _error_code(answer) == "UNREGISTERED":
                unregistered += 1
            else:
                reason = f"FCM refused a validate_only send: {status} {_error_code(answer)}"
                return Check(app.name, "fcm", False, reason, valid, unregistered)
    except Exception as exc:  # pyreqwest's connect/timeout errors: the check failed, say so
        return Check(app.name, "fcm", False, f"FCM unreachable: {type(exc).__name__}")
    detail = f"access token fetched; validate_only accepted {valid} of {len(sample_tokens)}"
    return Check(app.name, "fcm", True, detail, valid, unregistered)
