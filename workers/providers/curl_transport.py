"""HTTP/2 through libcurl's multi interface (pycurl), driven by the asyncio event loop.

libcurl does the HTTP/2 (nghttp2): multiplexing, flow control, SETTINGS (it never opens more
streams than the server's MAX_CONCURRENT_STREAMS), GOAWAY (requests the server did not
process are retried on a fresh connection), reconnects and TLS. This module is only the glue
libcurl documents for event loops (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION +
curl_multi_socket_action): libcurl tells us which fds to watch and when to wake it; the loop
calls back into libcurl; finished transfers resolve their futures.

libcurl's C code does all per-frame work: Python sees one call per request plus a few buffer
appends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pycurl

from pushfan.workers.providers.transport import Answer, TransportConfig, TransportError

_VERSIONS = {
    pycurl.CURL_HTTP_VERSION_1_0: 1,
    pycurl.CURL_HTTP_VERSION_1_1: 1,
    pycurl.CURL_HTTP_VERSION_2_0: 2,
    getattr(pycurl, "CURL_HTTP_VERSION_3", 30): 3,
}
_IDLE_HANDLES = 1024  # easy handles kept for reuse (options set once survive a transfer)


class CurlHeaders:
    """Response header lines as libcurl delivered them, parsed only when asked."""

    __slots__ = ("_lines",)

    def __init__(self, lines: list[bytes]) -> None:
        self._lines = lines

    def get(self, name: str, /) -> str | None:
        wanted = name.lower()
        for line in self._lines:
            key, sep, value = line.decode("latin-1").partition(":")
            if sep and key.strip().lower() == wanted:
                return value.strip()
        return None


class CurlTransport:
    def __init__(self, config: TransportConfig) -> None:
        self._base = config.base_url.rstrip("/")
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, config.max_connections)
        # libcurl's default is 100 streams a connection; the server's SETTINGS lower this cap
        # further if it advertises less.
        self._multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, config.max_streams)
        self._idle: list[Any] = []
        self._busy: set[Any] = set()
        self._watched: dict[int, int] = {}  # fd -> pycurl.POLL_* currently registered
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def _new_handle(self) -> Any:
        easy = pycurl.Curl()
        h2c = self._base.startswith("http://")
        easy.setopt(
            pycurl.HTTP_VERSION,
            pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE if h2c else pycurl.CURL_HTTP_VERSION_2TLS,
        )
        # Wait for a multiplexed stream on an existing connection rather than opening a new
        # one per request; new connections come only when every stream slot is taken.
        easy.setopt(pycurl.PIPEWAIT, 1)
        easy.setopt(pycurl.NOSIGNAL, 1)
        easy.setopt(pycurl.TIMEOUT_MS, int(self._config.timeout_s * 1000))
        easy.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(self._config.timeout_s, 5.0) * 1000))
        if self._config.ca_file is not None:
            easy.setopt(pycurl.CAINFO, str(self._config.ca_file))
        identity = self._config.client_identity_pem
        if identity is not None:  # APNs certificate auth: certificate and key, in memory
            easy.setopt(pycurl.SSLCERT_BLOB, identity)
            easy.setopt(pycurl.SSLCERTTYPE, "PEM")
            easy.setopt(pycurl.SSLKEY_BLOB, identity)
            easy.setopt(pycurl.SSLKEYTYPE, "PEM")
        return easy

    async def post(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        extra: tuple[str, str] | None = None,
    ) -> Answer:
        if self._closed:
            raise TransportError("transport closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        easy = self._idle.pop() if self._idle else self._new_handle()
        chunks: list[bytes] = []
        lines: list[bytes] = []
        easy.setopt(pycurl.URL, self._base + path)
        lines_out = [f"{k}: {v}" for k, v in headers]
        if extra is not None:
            lines_out.append(f"{extra[0]}: {extra[1]}")
        easy.setopt(pycurl.HTTPHEADER, lines_out)
        easy.setopt(pycurl.POSTFIELDS, body)
        easy.setopt(pycurl.WRITEFUNCTION, chunks.append)
        easy.setopt(pycurl.HEADERFUNCTION, lines.append)
        future: asyncio.Future[Answer] = self._loop.create_future()
        easy.pushfan = (future, chunks, lines)
        self._busy.add(easy)
        self._multi.add_handle(easy)
        try:
            return await future
        except asyncio.CancelledError:
            if easy in self._busy:  # abandoned mid-flight: take it out of libcurl's hands
                self._busy.discard(easy)
                self._multi.remove_handle(easy)
                easy.close()
            raise

    # -- libcurl callbacks -------------------------------------------------------------------

    def _on_socket(self, event: int, fd: int, _multi: Any, _data: Any) -> None:
        loop = self._loop
        assert loop is not None
        before = self._watched.get(fd, 0)
        if event == pycurl.POLL_REMOVE:
            event = 0
        if (event & pycurl.POLL_IN) != (before & pycurl.POLL_IN):
            if event & pycurl.POLL_IN:
                loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
            else:
                loop.remove_reader(fd)
        if (event & pycurl.POLL_OUT) != (before & pycurl.POLL_OUT):
            if event & pycurl.POLL_OUT:
                loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
            else:
                loop.remove_writer(fd)
        if event:
            self._watched[fd] = event
        else:
            self._watched.pop(fd, None)

    def _on_timer(self, timeout_ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if timeout_ms >= 0 and self._loop is not None:
            self._timer = self._loop.call_later(
                timeout_ms / 1000, self._act, pycurl.SOCKET_TIMEOUT, 0
            )

    def _act(self, fd: int, events: int) -> None:
        if fd == pycurl.SOCKET_TIMEOUT:
            self._timer = None
        self._multi.socket_action(fd, events)
        self._collect()

    def _collect(self) -> None:
        while True:
            queued, done, failed = self._multi.info_read()
            for easy in done:
                self._finish(easy, None)
            for easy, errno, message in failed:
                self._finish(easy, f"curl error {errno}: {message}")
            if not queued:
                return

    def _finish(self, easy: Any, error: str | None) -> None:
        self._multi.remove_handle(easy)
        self._busy.discard(easy)
        future, chunks, lines = easy.pushfan
        easy.pushfan = None
        if not future.done():
            if error is not None:
                future.set_exception(TransportError(error))
            else:
                future.set_result(
                    Answer(
                        easy.getinfo(pycurl.RESPONSE_CODE),
                        CurlHeaders(lines),
                        b"".join(chunks),
                        _VERSIONS.get(easy.getinfo(pycurl.INFO_HTTP_VERSION), 0),
                    )
                )
        if len(self._idle) < _IDLE_HANDLES:
            self._idle.append(easy)
        else:
            easy.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for easy in list(self._busy):
            self._multi.remove_handle(easy)
            future = easy.pushfan[0]
            if not future.done():
                future.set_exception(TransportError("transport closed"))
            easy.close()
        self._busy.clear()
        if self._loop is not None:
            for fd in list(self._watched):
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(fd)
                    self._loop.remove_writer(fd)
        self._watched.clear()
        for easy in self._idle:
            easy.close()
        self._idle.clear()
        self._multi.close()
