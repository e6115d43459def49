"""HTTP/2 through Rust's reqwest/hyper (pyreqwest): the default transport of the fast providers.

hyper's h2 does multiplexing, flow control, SETTINGS, GOAWAY and reconnects; the client is
HTTP/2 only (prior knowledge on h2c, ALPN h2 on TLS) and trusts only the configured CA when
one is given.
"""

from __future__ import annotations

from datetime import timedelta

from pyreqwest.client import ClientBuilder

from pushfan.workers.providers.transport import Answer, TransportConfig, TransportError


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

    async def post(self, path: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        request = self._client.post(self._base + path).headers(headers).body_bytes(body).build()
        try:
            response = await request.send()
            content = bytes(await response.bytes())
        except Exception as exc:  # pyreqwest's errors: connect, timeout, reset, GOAWAY
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        version = 2 if response.version == "HTTP/2.0" else 1
        return Answer(response.status, response.headers, content, version)

    async def close(self) -> None:
        await self._client.close()
