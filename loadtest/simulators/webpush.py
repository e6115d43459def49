"""A Web Push service (RFC 8030 / 8291 / 8292) that decrypts every push it accepts.

It holds the browser side of the subscriptions it hands out (`POST /_sim/subscriptions
?count=N`, or derived from the seed: webpush_keys), so it can do what a browser would:
decrypt the `aes128gcm` body. Checks, in order, answering like the real services:

    405  not a POST                              404  not /push/<id>
    401  no or malformed `Authorization: vapid t=..., k=...`, a JWT whose signature does not
         verify with k, `aud` other than this origin, expired, or `exp` more than 24 h ahead
    403  k is not one of the --vapid-key given (the subscription's applicationServerKey)
    400  no TTL, a bad Urgency or Topic, Content-Encoding not aes128gcm, a body that does
         not decrypt with the subscription's keys
    413  a body over 4096 bytes
    429  (+ Retry-After) / 500 / 503 injected faults;   410  a dead subscription (--dead-fraction)
    201  accepted: recorded under the payload's `alert_id` (else the Topic), with the
         SHA-256 of the decrypted payload; `/_sim/stats` adds `payload_digests`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import http_ece
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from loadtest.simulators.control import PREFIX, handle_control
from loadtest.simulators.faults import FaultConfig, Faults
from loadtest.simulators.recorder import Recorder, summarise
from loadtest.simulators.rsgi import HTTPProtocol, Scope, send_json
from loadtest.simulators.webpush_keys import PUSH_PATH, derive
from pushfan.webpush import MAX_BODY_BYTES, b64url_decode

MAX_JWT_LIFETIME_S = 24 * 3600
MAX_DIGESTS = 1_000  # distinct payloads remembered; more are counted, not kept
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_URGENCY = frozenset({"very-low", "low", "normal", "high"})
_VAPID = re.compile(r"vapid\s+t=([A-Za-z0-9_.-]+),\s*k=([A-Za-z0-9_-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class WebPushConfig:
    origin: str  # https://host:port, the `aud` a JWT must carry
    vapid_keys: frozenset[str] = frozenset()  # accepted k values; empty: any
    faults: FaultConfig = field(default_factory=FaultConfig)


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WebPushApp:
    """The RSGI app; one instance per server process."""

    def __init__(self, config: WebPushConfig) -> None:
        self.config = config
        self.recorder = Recorder()
        self.faults = Faults(config.faults)
        self._messages = itertools.count(1)
        self._next_subscription = 1
        self._jwts: dict[tuple[str, str], float] = {}  # (token, k) verified -> its exp
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self.digests: dict[str, int] = {}
        self.samples: dict[str, str] = {}

    def reset(self) -> None:
        self.recorder.reset()
        self.faults = Faults(self.config.faults)
        self.digests, self.samples = {}, {}

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        path = scope.path
        if path == "/_sim/subscriptions" and scope.method == "POST":
            await proto()
            self._hand_out(scope, proto)
            return
        if path == "/_sim/stats" and scope.method == "GET":
            await self._stats(scope, proto)
            return
        if path.startswith(PREFIX):
            await handle_control(scope, proto, self.recorder, self.reset)
            return
        if self.faults.has_latency:
            await asyncio.sleep(self.faults.latency_s())
        body = await proto()
        try:
            sub_id = self._check(scope, body)
            plaintext = self._decrypt(sub_id, body)
            self._fault(sub_id)
        except Refused as refused:
            self.recorder.reject(refused.reason)
            headers = [("retry-after", "1")] if refused.status == 429 else []
            send_json(proto, refused.status, {"reason": refused.reason}, headers)
            return
        self._record(sub_id, plaintext, scope.headers.get("topic"))
        proto.response_empty(201, [("location", f"{self.config.origin}/m/{next(self._messages)}")])

    def _check(self, scope: Scope, body: bytes) -> str:
        if scope.method != "POST":
            raise Refused(405, "MethodNotAllowed")
        path = scope.path
        sub_id = path[len(PUSH_PATH) :] if path.startswith(PUSH_PATH) else ""
        if not _ID.fullmatch(sub_id):
            raise Refused(404, "NoSuchSubscription")
        self._check_vapid(scope.headers.get("authorization"))
        headers = scope.headers
        ttl = headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            raise Refused(400, "MissingTTL")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in _URGENCY:
            raise Refused(400, "BadUrgency")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise Refused(400, "BadTopic")
        if headers.get("content-encoding") != "aes128gcm":
            raise Refused(400, "BadContentEncoding")
        if len(body) > MAX_BODY_BYTES:
            raise Refused(413, "PayloadTooLarge")
        return sub_id

    def _check_vapid(self, header: str | None) -> None:
        match = _VAPID.fullmatch(header.strip()) if header else None
        if match is None:
            raise Refused(401, "MissingVapid")
        token, k = match.groups()
        now = time.time()
        exp = self._jwts.get((token, k))
        if exp is None:
            exp = self._verify(token, k, now)
            if len(self._jwts) > 10_000:
                self._jwts.clear()
            self._jwts[(token, k)] = exp
        if exp <= now:
            raise Refused(401, "ExpiredJwt")
        if self.config.vapid_keys and k not in self.config.vapid_keys:
            raise Refused(403, "VapidKeyMismatch")

    def _verify(self, token: str, k: str, now: float) -> float:
        key = self._keys.get(k)
        if key is None:
            try:
                key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(k))
            except ValueError:
                raise Refused(401, "BadVapidKey") from None
            self._keys[k] = key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.config.origin,
                options={"require": ["exp", "aud"]},
            )
        except jwt.InvalidAudienceError:
            raise Refused(401, "BadJwtAudience") from None
        except jwt.ExpiredSignatureError:
            raise Refused(401, "ExpiredJwt") from None
        except jwt.PyJWTError:
            raise Refused(401, "BadJwt") from None
        exp = float(claims["exp"])
        if exp > now + MAX_JWT_LIFETIME_S:
            raise Refused(401, "JwtTooLong")
        return exp

    def _decrypt(self, sub_id: str, body: bytes) -> bytes:
        sub = derive(self.config.faults.seed, sub_id)
        try:
            return bytes(http_ece.decrypt(body, private_key=sub.private, auth_secret=sub.auth))
        except Exception:  # http_ece raises ECEException, ValueError or InvalidTag
            raise Refused(400, "DecryptionFailed") from None

    def _fault(self, sub_id: str) -> None:
        if self.faults.rate_limited():
            raise Refused(429, "TooManyRequests")
        status = self.faults.injected_error()
        if status:
            raise Refused(status, "InternalServerError" if status == 500 else "Unavailable")
        if self.faults.dead(sub_id):
            raise Refused(410, "Gone")

    def _record(self, sub_id: str, plaintext: bytes, topic: str | None) -> None:
        collapse = topic
        try:
            doc = orjson.loads(plaintext)
            if isinstance(doc, dict) and isinstance(doc.get("alert_id"), str):
                collapse = doc["alert_id"]
        except orjson.JSONDecodeError:
            pass
        self.recorder.accept(sub_id, collapse)
        digest = hashlib.sha256(plaintext).hexdigest()
        if digest in self.digests or len(self.digests) < MAX_DIGESTS:
            self.digests[digest] = self.digests.get(digest, 0) + 1
            self.samples.setdefault(digest, plaintext.decode(errors="replace"))

    def _hand_out(self, scope: Scope, proto: HTTPProtocol) -> None:
        query = parse_qs(scope.query_string)
        try:
            count = int(query.get("count", ["1"])[0])
        except ValueError:
            count = 0
        if not 1 <= count <= 10_000:
            send_json(proto, 400, {"reason": "count must be 1 to 10000"})
            return
        start = self._next_subscription
        self._next_subscription += count
        subs = [
            derive(self.config.faults.seed, f"h{n}").as_json(self.config.origin)
            for n in range(start, start + count)
        ]
        send_json(proto, 200, {"subscriptions": subs})

    async def _stats(self, scope: Scope, proto: HTTPProtocol) -> None:
        collapse_id = parse_qs(scope.query_string).get("collapse_id", [None])[0]
        stats: dict[str, Any] = self.recorder.header(collapse_id)
        stats |= await asyncio.to_thread(summarise, self.recorder.snapshot(), collapse_id)
        stats["payload_digests"] = dict(self.digests)
        stats["payload_samples"] = dict(itertools.islice(self.samples.items(), 20))
        send_json(proto, 200, stats)
