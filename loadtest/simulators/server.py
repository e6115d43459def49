"""Runs one simulator app under granian's embedded RSGI server, HTTP/2 only, one process.

Chosen by measurement: granian embedded in the asyncio loop (uvloop) serves a bare RSGI app at
~60,000 req/s on one core over h2c, so the simulator's own checks have room inside the
20,000 req/s budget; FastAPI or hypercorn would have been the bottleneck. One process also
means one recorder, so `/_sim/stats` sees every push.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP2Settings
from granian.server.common import SSLProtocols
from granian.server.embed import Server

from loadtest.simulators.cert_front import CertificateFront, Peers, front_context
from loadtest.simulators.relay import DropRelay
from loadtest.simulators.tls import TlsFiles, ensure_tls_dir, server_context

log = logging.getLogger(__name__)

DEFAULT_TLS_DIR = Path(tempfile.gettempdir()) / "pushfan-simulator-tls"
MAX_CONCURRENT_STREAMS = 1000  # what APNs advertises; FCM allows more, clients use ~100


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    h2c: bool = False
    cert: Path | None = None
    key: Path | None = None
    tls_dir: Path | None = None
    drop_connection_every: int = 0
    # Client-certificate mode (cert_front): a certificate from this CA is verified and its
    # identity handed to the app; without one the handshake fails, unless `client_optional`
    # (token auth is served too).
    client_ca: Path | None = None
    client_optional: bool = False

    @property
    def url(self) -> str:
        return f"{'http' if self.h2c else 'https'}://{self.host}:{self.port}"

    def tls_files(self) -> TlsFiles | None:
        if self.h2c:
            return None
        if self.cert and self.key:
            return TlsFiles(self.cert, self.cert, self.key)
        return ensure_tls_dir(self.tls_dir or DEFAULT_TLS_DIR)


Front = Callable[[], Awaitable[asyncio.Server]]


async def serve(
    app: Any,
    options: ServeOptions,
    on_ready: Callable[[str], None],
    peers: Peers | None = None,
) -> None:
    """Serves until SIGINT/SIGTERM; calls `on_ready(url)` once the port accepts connections.
    In client-certificate mode the front fills `peers` for the app."""
    _ensure_port_free(options.host, options.port)
    tls = options.tls_files()
    with tempfile.TemporaryDirectory(prefix="pushfan-sim-") as scratch:
        server, upstream, front = _plan(app, options, tls, Path(scratch), peers)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        running = asyncio.create_task(server.serve())
        front_server: asyncio.Server | None = None
        try:
            await _wait_listening(running, upstream)
            if front is not None:
                front_server = await front()
            if tls:
                log.info("clients should trust %s", tls.ca)
            on_ready(options.url)
            await running
        finally:
            if front_server is not None:
                front_server.close()
            if not running.done():
                server.stop()
                with contextlib.suppress(Exception):
                    await running


def _plan(
    app: Any, options: ServeOptions, tls: TlsFiles | None, scratch: Path, peers: Peers | None
) -> tuple[Server, tuple[str, int] | Path, Front | None]:
    """granian, where it listens, and the front on the public port when there is one: the
    connection-dropping relay, or the client-certificate front."""
    if options.drop_connection_every > 0:
        upstream = scratch / "upstream.sock"
        relay = DropRelay(upstream, options.drop_connection_every)
        context = server_context(tls.cert, tls.key) if tls else None
        front = partial(relay.start, options.host, options.port, context)
        return _granian(app, uds=upstream), upstream, front
    if options.client_ca is not None and tls is not None:
        port = _free_port()
        certs = CertificateFront(port, peers if peers is not None else Peers())
        required = not options.client_optional
        context = front_context(tls.cert, tls.key, options.client_ca, required)
        front = partial(certs.start, options.host, options.port, context)
        return _granian(app, options=ServeOptions(port=port, h2c=True)), ("127.0.0.1", port), front
    return _granian(app, options=options, tls=tls), (options.host, options.port), None


def _granian(
    app: Any,
    options: ServeOptions | None = None,
    tls: TlsFiles | None = None,
    uds: Path | None = None,
) -> Server:
    common: dict[str, Any] = {
        "interface": Interfaces.RSGI,
        "http": HTTPModes.http2,
        "http2_settings": HTTP2Settings(max_concurrent_streams=MAX_CONCURRENT_STREAMS),
        "backlog": 1024,
        "log_enabled": False,
        "websockets": False,
    }
    if uds is not None:
        return Server(app, uds=uds, **common)
    assert options is not None
    if tls is not None:
        common |= {
            "ssl_cert": tls.cert,
            "ssl_key": tls.key,
            "ssl_protocol_min": SSLProtocols.tls12,
        }
    return Server(app, address=options.host, port=options.port, **common)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_port_free(host: str, port: int) -> None:
    """Fails when something listens already: granian binds with SO_REUSEPORT, so a second
    simulator on a busy port would silently share it with the first."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


async def _wait_listening(
    running: asyncio.Task[None], where: tuple[str, int] | Path, timeout_s: float = 10.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if running.done():
            running.result()  # raises what made granian exit
            raise RuntimeError("granian exited before listening")
        try:
            if isinstance(where, Path):
                _, writer = await asyncio.open_unix_connection(str(where))
            else:
                _, writer = await asyncio.open_connection(*where)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.02)


def run(app: Any, options: ServeOptions, peers: Peers | None = None) -> int:
    """Foreground entry point: prints `READY <url>` on stdout when the port accepts."""

    def ready(url: str) -> None:
        print(f"READY {url}", flush=True)

    try:
        import uvloop

        uvloop.run(serve(app, options, ready, peers))
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        asyncio.run(serve(app, options, ready, peers))
    except OSError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    return 0
