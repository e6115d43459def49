"""The HTTP/2 transport under the fast providers: POST bytes, get status, headers and body.

The providers (apns_fast, fcm_fast) own the protocol semantics (auth tokens, headers, error
bodies); a transport only moves requests. Two implementations, `settings.http_transport`
picks one (the client CPU per request of each, and of the other candidates, is in
docs/performance.md with the command that measures it):

- `reqwest` (default): Rust's reqwest/hyper through pyreqwest
  (workers/providers/reqwest_transport.py), a pure wheel.
- `curl`: libcurl's multi interface through pycurl, driven by the asyncio loop's socket
  callbacks (workers/providers/curl_transport.py).

Both multiplex many streams on a few connections, honour the server's
SETTINGS_MAX_CONCURRENT_STREAMS (capped by `max_streams`), retry requests a GOAWAY refused
before processing, and surface dropped connections and timeouts as `TransportError`, which
the providers classify as RETRIED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

TransportKind = Literal["curl", "reqwest"]


class TransportError(Exception):
    """The request got no HTTP answer (connection refused or dropped, timeout, TLS)."""


class Headers(Protocol):
    def get(self, name: str, /) -> str | None: ...


@dataclass(slots=True)
class Answer:
    status: int
    headers: Headers  # parsed lazily: only the rare answers that need one pay for it
    body: bytes
    http_version: int = 2  # 2 for HTTP/2; anything else means the server downgraded us


@dataclass(frozen=True)
class TransportConfig:
    base_url: str  # https://host[:port] (TLS, ALPN h2) or http://... (h2c, prior knowledge)
    ca_file: Path | None = None  # trust only this CA; None = the system CAs
    max_connections: int = 2  # per host; libcurl opens more only when streams run out
    max_streams: int = 1000  # cap on concurrent streams per connection (server may lower)
    timeout_s: float = 10.0
    # Certificate and private key (PEM) presented to the server: APNs certificate auth.
    client_identity_pem: bytes | None = field(default=None, repr=False)


class Transport(Protocol):
    async def post(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        extra: tuple[str, str] | None = None,
    ) -> Answer:
        """POST `body` to base_url + path with `headers`, and `extra` if given (the one
        header that differs per push: a batch passes the same `headers` list to every push
        and a transport may keep what it derived from it); raises TransportError when no
        answer came."""
        ...

    async def close(self) -> None: ...
