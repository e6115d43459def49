"""FCM HTTP v1 (`POST /v1/projects/<p>/messages:send`) and its OAuth2 token endpoint.

Checks, in order: path, bearer token (401 UNAUTHENTICATED), project (403 SENDER_ID_MISMATCH
when `--project` is given and the project is not one of them), request body (400
INVALID_ARGUMENT), injected faults (429 QUOTA_EXCEEDED with Retry-After, 503 UNAVAILABLE, 500
INTERNAL), then whether the token is dead (404 UNREGISTERED). Accepted messages are counted per kind
(`notification` when the system draws it, `data` when only the app gets it) with a sample of
each alert's messages (without the token). `validate_only` requests are
checked the same way but counted as `validated`, not accepted. Errors use Google's shape with
an FcmError detail; 401 carries none, as Google's front end answers it before FCM does.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from loadtest.simulators.control import PREFIX, handle_control
from loadtest.simulators.faults import FaultConfig, Faults
from loadtest.simulators.fcm_android import kind
from loadtest.simulators.fcm_message import payload_too_big, request_refusal
from loadtest.simulators.oauth import GOOGLE_TOKEN_URI, GrantError, ServiceAccount, TokenIssuer
from loadtest.simulators.recorder import Recorder
from loadtest.simulators.rsgi import HTTPProtocol, Scope, bearer, send_json

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")

# errorCode -> (HTTP status, google.rpc status)
_ERRORS = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "UNREGISTERED": (404, "NOT_FOUND"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "INTERNAL": (500, "INTERNAL"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
}


@dataclass(frozen=True)
class FcmConfig:
    accounts: list[ServiceAccount]
    projects: frozenset[str] = frozenset()  # empty: any project
    access_token_ttl_s: int = 3600
    faults: FaultConfig = field(default_factory=FaultConfig)


class FcmApp:
    """The RSGI app; one instance per server process."""

    def __init__(self, config: FcmConfig) -> None:
        self.config = config
        self.recorder = Recorder()
        self.issuer = TokenIssuer(config.accounts, config.access_token_ttl_s)
        self.faults = Faults(config.faults)
        self._ids = itertools.count(1)

    def reset(self) -> None:
        self.recorder.reset()
        self.faults = Faults(self.config.faults)

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        path = scope.path
        if path.startswith(PREFIX):
            await handle_control(scope, proto, self.recorder, self.reset)
        elif path == "/token" and scope.method == "POST":
            await self._token(scope, proto)
        else:
            match = _SEND_PATH.fullmatch(path)
            if match is None or scope.method != "POST":
                send_json(proto, 404, _error(404, "NOT_FOUND", "Not found: " + path))
                return
            if self.faults.has_latency:
                await asyncio.sleep(self.faults.latency_s())
            await self._send(scope, proto, match.group(1))

    async def _token(self, scope: Scope, proto: HTTPProtocol) -> None:
        form = await proto()
        audiences = {f"{scope.scheme}://{scope.authority}/token", GOOGLE_TOKEN_URI}
        try:
            send_json(proto, 200, self.issuer.grant(form, audiences))
        except GrantError as exc:
            send_json(proto, 400, {"error": exc.error, "error_description": exc.description})

    async def _send(self, scope: Scope, proto: HTTPProtocol, project: str) -> None:
        body = await proto()
        if not self.issuer.valid(bearer(scope), time.time()):
            self.recorder.reject("UNAUTHENTICATED")
            message = (
                "Request had invalid authentication credentials. Expected OAuth 2 access"
                " token, login cookie or other valid authentication credential."
            )
            send_json(proto, 401, _error(401, "UNAUTHENTICATED", message))
            return
        if self.config.projects and project not in self.config.projects:
            self._refuse(proto, "SENDER_ID_MISMATCH", "SenderId mismatch")
            return
        try:
            request: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._refuse(proto, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            return
        refusal = request_refusal(request)
        if refusal is None and payload_too_big(request["message"], len(body)):
            refusal = "Message is too big"
        if refusal is not None:
            self._refuse(proto, "INVALID_ARGUMENT", refusal)
            return
        if self._faulted(proto, project):
            return
        message = request["message"]
        token = message.get("token")
        if token is not None and self.faults.dead(token):
            self._refuse(proto, "UNREGISTERED", "Requested entity was not found.")
            return
        if request.get("validate_only", request.get("validateOnly", False)):
            self.recorder.validated += 1
            send_json(proto, 200, {"name": f"projects/{project}/messages/fake_message_id"})
            return
        target = token or _target_key(message)
        collapse_key = (message.get("android") or {}).get("collapse_key")

        def sample() -> dict[str, Any]:
            return {key: value for key, value in message.items() if key != "token"}

        self.recorder.accept(target, collapse_key, kind(message), sample)
        name = f"projects/{project}/messages/0:{time.time_ns() // 1000}%{next(self._ids):x}"
        send_json(proto, 200, {"name": name})

    def _faulted(self, proto: HTTPProtocol, project: str) -> bool:
        retry_after = 1 if self.faults.rate_limited() else self.faults.quota_retry_after(project)
        if retry_after:
            message = "Quota exceeded for quota metric 'Send requests' per minute per project."
            self._refuse(proto, "QUOTA_EXCEEDED", message, [("retry-after", str(retry_after))])
            return True
        status = self.faults.injected_error()
        if status == 503:
            self._refuse(proto, "UNAVAILABLE", "The service is currently unavailable.")
        elif status == 500:
            self._refuse(proto, "INTERNAL", "Internal error encountered.")
        return status != 0

    def _refuse(
        self,
        proto: HTTPProtocol,
        error_code: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.recorder.reject(error_code)
        code, status = _ERRORS[error_code]
        send_json(proto, code, _error(code, status, message, error_code), headers)


def _error(code: int, status: str, message: str, error_code: str | None = None) -> Any:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if error_code is not None:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": error_code}]
    return {"error": error}


def _target_key(message: dict[str, Any]) -> str:
    if message.get("topic") is not None:
        return "/topics/" + str(message["topic"]).removeprefix("/topics/")
    return "condition:" + str(message["condition"])
