"""Web Push subscriptions (RFC 8030 / 8291): what a browser hands over, checked before it is
stored, and how it travels to the sender.

A browser's `PushSubscription` is an endpoint URL at its vendor's push service plus two
keys: `p256dh` (the browser's P-256 public key, 65 bytes uncompressed) and `auth` (16
bytes). The endpoint is user-supplied and the sender will POST to it, so it must never be a
way into the operator's network: only `https` URLs on a host of the configured allowlist of
push services are accepted (IP literals, userinfo, unusual ports, percent-encoded or
non-ASCII hosts and fragments are refused outright). A development flag may name
simulator hosts (`host:port`) to accept as they are.

In the registry the endpoint is the device's token (unique per app) and the keys are stored
beside it; in a send batch a web target's token is `wire_token()`, the endpoint, the keys
and the subscription's expiry in one string, so the sender never reads the database. A
subscription past its `expirationTime` is never sent to: the sender counts it invalid and
deactivates the device, as it does when a push service answers 404 or 410.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from pushfan.messages import Extras, Notification

# The push services of the major browsers: Chrome, Edge (legacy), Opera and Samsung Internet
# use FCM; Firefox uses Mozilla's autopush; Edge uses WNS; Safari uses Apple's web push.
DEFAULT_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)
MAX_ENDPOINT_CHARS = 2048
# A push service takes bodies of at least 4096 bytes (RFC 8030 §7.2). The aes128gcm body
# (RFC 8291) is an 86-byte header and one record: the plaintext, a 1-byte delimiter and a
# 16-byte tag.
MAX_BODY_BYTES = 4096
BODY_OVERHEAD_BYTES = 86 + 1 + 16
MAX_PLAINTEXT_BYTES = MAX_BODY_BYTES - BODY_OVERHEAD_BYTES
P256DH_BYTES = 65
AUTH_BYTES = 16
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class SubscriptionRefused(ValueError):
    """The subscription cannot be used; the message says why in one short sentence."""


@dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: bytes  # 65 bytes, an uncompressed point on P-256
    auth: bytes  # 16 bytes

    @property
    def keys(self) -> str:
        """The keys as stored beside the endpoint: 'p256dh auth', unpadded base64url."""
        return f"{b64url(self.p256dh)} {b64url(self.auth)}"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; refuses the standard alphabet's + and /."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """`host` equals a pattern, or a pattern `*.suffix` and host is `<labels>.suffix`."""
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def check_endpoint(url: str, allowed_hosts: Iterable[str], dev_hosts: Iterable[str] = ()) -> str:
    """The endpoint, normalised (host lower-cased, a default :443 dropped: one browser is one
    device), if the sender may POST to it; else SubscriptionRefused saying why.

    `dev_hosts` ("host:port", development only) are accepted as they are, over https, so a
    local simulator on 127.0.0.1 can stand in for a push service."""
    parts, port = _https_url(url)
    if parts.netloc.lower() in {h.lower() for h in dev_hosts}:
        return url
    host = parts.hostname or ""
    if not host:
        raise SubscriptionRefused("endpoint has no host")
    _refuse_address(host)
    if "%" in parts.netloc or "[" in parts.netloc:
        raise SubscriptionRefused("endpoint host must be a plain DNS name")
    if port not in (None, 443):
        raise SubscriptionRefused("endpoint must use the default https port")
    if host.endswith(".") or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise SubscriptionRefused("endpoint host is not a valid DNS name")
    if not host_allowed(host, allowed_hosts):
        raise SubscriptionRefused(f"endpoint host {host!r} is not a known push service")
    return "https://" + host + url[len("https://") + len(parts.netloc) :]


def _https_url(url: str) -> tuple[SplitResult, int | None]:
    """The parts and port of a plain https URL: printable ASCII, no userinfo, no fragment."""
    if len(url) > MAX_ENDPOINT_CHARS:
        raise SubscriptionRefused(f"endpoint longer than {MAX_ENDPOINT_CHARS} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x21 or c in "\\\x7f" for c in url):
        raise SubscriptionRefused("endpoint has spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SubscriptionRefused(f"endpoint is not a URL ({exc})") from None
    if parts.scheme != "https" or not url.startswith("https://"):
        raise SubscriptionRefused("endpoint must be an https URL")
    if "@" in parts.netloc:
        raise SubscriptionRefused("endpoint must not carry user information")
    if parts.fragment or "#" in url:
        raise SubscriptionRefused("endpoint must not have a fragment")
    return parts, port


def _refuse_address(host: str) -> None:
    """IP literals in any spelling (dotted, integer, hex, octal, IPv6) and names of this
    machine are never push services."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        kind = "an" if address.is_global else "a private or loopback"
        raise SubscriptionRefused(f"endpoint host is {kind} IP address")
    labels = host.split(".")
    if all(_NUMERIC_LABEL.match(label) for label in labels if label):
        raise SubscriptionRefused("endpoint host is a numeric IP address spelling")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise SubscriptionRefused("endpoint host names this machine or a private network")


def check_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """The decoded keys, or SubscriptionRefused: p256dh must be a point on P-256, auth 16 bytes."""
    try:
        point = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except (ValueError, binascii.Error):
        raise SubscriptionRefused("keys must be base64url") from None
    if len(point) != P256DH_BYTES or point[0] != 4:
        raise SubscriptionRefused(
            f"keys.p256dh must be an uncompressed P-256 point ({P256DH_BYTES} bytes)"
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise SubscriptionRefused("keys.p256dh is not a point on P-256") from None
    if len(secret) != AUTH_BYTES:
        raise SubscriptionRefused(f"keys.auth must be {AUTH_BYTES} bytes")
    return point, secret


def parse(
    endpoint: str,
    p256dh: str,
    auth: str,
    allowed_hosts: Iterable[str],
    dev_hosts: Iterable[str] = (),
) -> Subscription:
    endpoint = check_endpoint(endpoint, allowed_hosts, dev_hosts)
    point, secret = check_keys(p256dh, auth)
    return Subscription(endpoint, point, secret)


def wire_token(endpoint: str, keys: str, expires_at: int = 0) -> str:
    """A web target's token in a send batch: 'endpoint p256dh auth', then ' expires_at' (unix
    seconds) when the browser gave the subscription an expirationTime (an endpoint has no
    spaces, check_endpoint made sure). pushfan.registry.SEND_TOKEN builds the same in SQL."""
    token = f"{endpoint} {keys}"
    return f"{token} {expires_at}" if expires_at else token


_FROM_URLSAFE = str.maketrans("-_", "+/")


def split_wire_token(token: str) -> tuple[str, bytes, bytes, int]:
    """(endpoint, p256dh, auth, expires_at or 0) from a wire token (its keys were checked at
    registration: decoded without the checks, on the sender's per-push path)."""
    parts = token.split(" ")
    endpoint, p256dh, auth = parts[:3]
    expires_at = int(parts[3]) if len(parts) > 3 else 0
    point = binascii.a2b_base64(p256dh.translate(_FROM_URLSAFE) + "=" * (-len(p256dh) % 4))
    secret = binascii.a2b_base64(auth.translate(_FROM_URLSAFE) + "=" * (-len(auth) % 4))
    return endpoint, point, secret, expires_at


_ORIGIN = re.compile(r"^https://[^/?# ]+")


def origin_of(endpoint: str) -> str:
    """'https://host[:port]': the push service an endpoint (or a wire token) belongs to, the
    VAPID `aud` and the unit of connection reuse and rate limiting."""
    match = _ORIGIN.match(endpoint)
    if match is None:
        raise ValueError("not an https endpoint")
    return match.group(0)


# interruption levels a browser keeps on screen until the user acts (requireInteraction)
_INSISTENT_LEVELS = frozenset({"time-sensitive", "critical"})
_NO_EXTRAS = Extras()


def payload(n: Notification) -> dict[str, Any]:
    """What the service worker's `push` event gets (`event.data.json()`), as a dict.

    A visible push: `title`, `body`, then those set of `subtitle`, `image` (the
    notification's image), `tag` (from thread_id: a later push with the same tag replaces
    it), `require_interaction` (true for the time-sensitive and critical interruption
    levels), `category`, `app_badge` (the count for navigator.setAppBadge; 0 clears it).
    A silent push (content_available): `silent: true` and no visible field. Both: `url` (the
    page to open on click), `data`, `alert_id` (the collapse id). Sound, relevance score
    and the apns/android override blocks have no browser counterpart and are left out; a
    data_only message is visible here, as on iOS."""
    x = n.extras if n.extras is not None else _NO_EXTRAS
    doc: dict[str, Any] = {}
    if x.content_available:
        doc["silent"] = True
    else:
        doc["title"] = n.title
        doc["body"] = n.body
        visible = (
            ("subtitle", x.subtitle),
            ("image", x.image),
            ("tag", x.thread_id),
            ("require_interaction", x.interruption_level in _INSISTENT_LEVELS or None),
            ("category", x.category),
            ("app_badge", x.badge),
        )
        doc |= {key: value for key, value in visible if value is not None and value != ""}
    if x.url:
        doc["url"] = x.url
    if n.data:
        doc["data"] = n.data
    if n.payload_alert_id:
        doc["alert_id"] = n.payload_alert_id
    return doc


def render(n: Notification) -> bytes:
    """payload(n) as the JSON bytes each subscription's copy encrypts: rendered once per
    batch."""
    return orjson.dumps(payload(n))


def oversize_reason(n: Notification) -> str | None:
    """Why `n` cannot go to a browser (its payload does not fit one aes128gcm record of a
    4096-byte push message), or None."""
    size = len(render(n))
    if size > MAX_PLAINTEXT_BYTES:
        return f"rendered Web Push payload is {size} bytes; the limit is {MAX_PLAINTEXT_BYTES}"
    return None


def topic(collapse_id: str) -> str | None:
    """RFC 8030 §5.4 Topic: at most 32 characters of the URL-safe base64 alphabet. An alert
    id (a UUID) without its hyphens is 32 hex characters."""
    value = collapse_id.replace("-", "")
    if not value or len(value) > 32 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        return None
    return value
