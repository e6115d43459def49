"""HTTP/2 through Rust's reqwest/hyper (pyreqwest): the default transport of the fast providers.

hyper's h2 does multiplexing, flow control, SETTINGS, GOAWAY and reconnects; the client is
HTTP/2 only (prior knowledge on h2c, ALPN h2 on TLS) and trusts only the configured CA when
one is given.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pyreqwest.client import ClientBuilder
from pyreqwest.http import HeaderMap

from pushfan.workers.providers.transport import Answer, TransportConfig, TransportError

MAX_HEADER_MAPS = 64  # batches' header lists kept converted (a sender holds a few at once)


class _LazyHeaders:
    """The answer's headers, copied out of the response only when one is asked for (the
    refused answers read Retry-After; a delivered push reads none)."""

    __slots__ = ("_response",)

    def __init__(self, response: Any) -> None:
        self._response = response

    def get(self, name: str, /) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value


class ReqwestTransport:
    def __init__(self, config: TransportConfig) -> None:
        self._base = config.base_url.rstrip("/")
        builder = (
            ClientBuilder()
            .http2_prior_knowledge()
            .follow_redirects(False)  # a 3xx is an answer, never a way elsewhere
            .timeout(timedelta(seconds=config.timeout_s))
            .connect_timeout(timedelta(seconds=min(config.timeout_s, 5.0)))
        )
        if config.ca_file is not None:
            builder = builder.add_root_certificate_pem(config.ca_file.read_bytes())
        if config.client_identity_pem is not None:  # APNs certificate auth (mutual TLS)
            builder = builder.identity_pem(config.client_identity_pem)
        self._client = builder.build()
        self._maps: dict[int, tuple[list[tuple[str, str]], HeaderMap]] = {}

    async def post(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        extra: tuple[str, str] | None = None,
    ) -> Answer:
        builder = self._client.post(self._base + path).headers(self._header_map(headers))
        if extra is not None:
            builder = builder.header(*extra)
        request = builder.body_bytes(body).build()
        try:
            response = await request.send()
            content = bytes(await response.bytes())
        except Exception as exc:  # pyreqwest's errors: connect, timeout, reset, GOAWAY
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        version = 2 if response.version == "HTTP/2.0" else 1
        return Answer(response.status, _LazyHeaders(response), content, version)

    def _header_map(self, headers: list[tuple[str, str]]) -> HeaderMap:
        """`headers` as the client's HeaderMap, converted once per list object: a batch
        passes one list to all its pushes (the entry keeps the list, so its id stays its)."""
        entry = self._maps.get(id(headers))
        if entry is not None and entry[0] is headers:
            return entry[1]
        if len(self._maps) >= MAX_HEADER_MAPS:
            self._maps.clear()
        converted = HeaderMap(headers)
        self._maps[id(headers)] = (headers, converted)
        return converted

    async def close(self) -> None:
        await self._client.close()
