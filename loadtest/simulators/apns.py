"""The APNs provider API (`POST /3/device/<token>` over HTTP/2), as Apple documents it.

Checks, in order: method and path, the credential (the provider token, or on a connection with
a client certificate the certificate's environment and topics: apns_certauth), headers, payload
(JSON, then the rules of apns_rules: push type vs payload, priority vs push type, aps keys and
values, image URL), then injected faults (429, 5xx), then whether the device is dead (410
Unregistered). An accepted push is recorded under its `apns-collapse-id` and `apns-push-type`
(a sample of its headers and payload kept). Error bodies are `{"reason": ...}`; `BadPayload`
(JSON that is not an object with an `aps` dictionary, or a payload its push type forbids) is
this simulator's own reason, since Apple documents none for it.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from loadtest.simulators.apns_auth import AuthKey, ProviderTokenVerifier
from loadtest.simulators.apns_certauth import CertificateIdentity
from loadtest.simulators.apns_rules import payload_refusal
from loadtest.simulators.cert_front import Peers
from loadtest.simulators.control import PREFIX, handle_control
from loadtest.simulators.faults import FaultConfig, Faults
from loadtest.simulators.recorder import Recorder
from loadtest.simulators.rsgi import Headers, HTTPProtocol, Scope, bearer, send_json
from pushfan.seed import is_sandbox_token

DEVICE_PATH = "/3/device/"
MAX_PAYLOAD = 4096
MAX_COLLAPSE_ID = 64
PUSH_TYPES = frozenset(
    "alert background location voip complication fileprovider mdm liveactivity pushtotalk"
    " widgets controls".split()
)
SAMPLED_HEADERS = (
    "apns-push-type",
    "apns-priority",
    "apns-expiration",
    "apns-collapse-id",
    "apns-topic",
)
_TOKEN = re.compile(r"[0-9a-fA-F]{64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

_STATUS = {
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "MissingProviderToken": 403,
    "InvalidProviderToken": 403,
    "ExpiredProviderToken": 403,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "PayloadTooLarge": 413,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}  # every other reason is a 400


@dataclass(frozen=True)
class ApnsConfig:
    keys: list[AuthKey]
    topics: frozenset[str] = frozenset()  # empty: any topic
    faults: FaultConfig = field(default_factory=FaultConfig)
    # "production" or "sandbox": the host this simulator plays; a token of the other
    # environment (pushfan.seed.is_sandbox_token) is a BadDeviceToken, as on Apple's hosts.
    # None: every token is welcome.
    environment: str | None = None
    # Certificate auth (cert_front verifies client certificates and fills ApnsApp.peers): a
    # push on a connection with a certificate is checked against the certificate's
    # environments and topics (apns_certauth) and needs no provider token; one without is
    # checked as token auth.
    client_certificates: bool = False


class ApnsApp:
    """The RSGI app; one instance per server process."""

    def __init__(self, config: ApnsConfig) -> None:
        self.config = config
        self.recorder = Recorder()
        self.auth = ProviderTokenVerifier(config.keys)
        self.peers = Peers()
        self.faults = Faults(config.faults)
        self._started_ms = int(time.time() * 1000)

    def reset(self) -> None:
        self.recorder.reset()
        self.faults = Faults(self.config.faults)

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        path = scope.path
        if path.startswith(PREFIX):
            await handle_control(scope, proto, self.recorder, self.reset)
            return
        if self.faults.has_latency:
            await asyncio.sleep(self.faults.latency_s())
        body = await proto()
        apns_id = scope.headers.get("apns-id") or ""
        reason = self._refusal(scope, path, body, apns_id)
        if reason is None:
            reason = self._fault()
        if reason is not None:
            self._refuse(proto, reason, apns_id)
            return
        token = path[len(DEVICE_PATH) :]
        if self.faults.dead(token):
            self.recorder.reject("Unregistered")
            # Apple's timestamp is when the token stopped being valid: before this run began.
            gone = {"reason": "Unregistered", "timestamp": self._started_ms}
            send_json(proto, 410, gone, [("apns-id", apns_id or str(uuid.uuid4()))])
            return
        headers = scope.headers
        push_type = headers.get("apns-push-type") or "alert"

        def sample() -> dict[str, Any]:
            kept = {name: headers.get(name) for name in SAMPLED_HEADERS}
            present = {name: value for name, value in kept.items() if value is not None}
            return {"headers": present, "payload": orjson.loads(body)}

        self.recorder.accept(token, headers.get("apns-collapse-id"), push_type, sample)
        proto.response_empty(200, [("apns-id", apns_id or str(uuid.uuid4()))])

    def _refusal(self, scope: Scope, path: str, body: bytes, apns_id: str) -> str | None:
        if scope.method != "POST":
            return "MethodNotAllowed"
        identity = self.peers.get(scope.client) if self.config.client_certificates else None
        refused = _path_refusal(path) or self._auth_refusal(scope, path, identity)
        if refused is not None:
            return refused
        if apns_id and not _UUID.fullmatch(apns_id):
            return "BadMessageId"
        headers = scope.headers
        refused = self._header_refusal(headers, topic_required=identity is None)
        if refused is not None:
            return refused
        push_type = headers.get("apns-push-type") or "alert"
        return _payload_refusal(body, push_type, headers.get("apns-priority") or "10")

    def _auth_refusal(
        self, scope: Scope, path: str, identity: CertificateIdentity | None
    ) -> str | None:
        """A certificate's connection is refused for the certificate (its environment, its
        topics) before the token's environment is looked at; a token-auth one after."""
        if identity is not None:
            topic = scope.headers.get("apns-topic") or None
            return identity.refusal(self.config.environment, topic) or self._environment_refusal(
                path
            )
        return self._environment_refusal(path) or self.auth.check(bearer(scope), time.time())

    def _environment_refusal(self, path: str) -> str | None:
        """BadDeviceToken for a token of the other environment than the host played."""
        environment = self.config.environment
        if environment is None:
            return None
        sandbox = is_sandbox_token(path[len(DEVICE_PATH) :])
        return None if sandbox == (environment == "sandbox") else "BadDeviceToken"

    def _header_refusal(self, headers: Headers, topic_required: bool = True) -> str | None:
        topic = headers.get("apns-topic")
        if not topic and topic_required:
            return "MissingTopic"
        if topic and self.config.topics and topic not in self.config.topics:
            return "TopicDisallowed"
        push_type = headers.get("apns-push-type")
        if push_type is not None and push_type not in PUSH_TYPES:
            return "InvalidPushType"
        priority = headers.get("apns-priority")
        if priority is not None and priority not in ("5", "10", "1"):
            return "BadPriority"
        expiration = headers.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return "BadExpirationDate"
        collapse_id = headers.get("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID:
            return "BadCollapseId"
        return None

    def _fault(self) -> str | None:
        if self.faults.rate_limited():
            return "TooManyRequests"
        status = self.faults.injected_error()
        if status == 500:
            return "InternalServerError"
        if status == 503:
            return "ServiceUnavailable"
        return None

    def _refuse(self, proto: HTTPProtocol, reason: str, apns_id: str) -> None:
        self.recorder.reject(reason)
        headers = [("apns-id", apns_id)] if apns_id and reason != "BadMessageId" else []
        send_json(proto, _STATUS.get(reason, 400), {"reason": reason}, headers)


def _payload_refusal(body: bytes, push_type: str, priority: str) -> str | None:
    if not body:
        return "PayloadEmpty"
    if len(body) > MAX_PAYLOAD:
        return "PayloadTooLarge"
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "BadPayload"
    if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
        return "BadPayload"
    return payload_refusal(payload, push_type, priority)


def _path_refusal(path: str) -> str | None:
    if not path.startswith(DEVICE_PATH):
        return "BadPath"
    token = path[len(DEVICE_PATH) :]
    if not token:
        return "MissingDeviceToken"
    if not _TOKEN.fullmatch(token):
        return "BadDeviceToken"
    return None
