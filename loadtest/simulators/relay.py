"""Drops connections mid-stream: a relay in front of the server that aborts every Nth request.

granian gives an app no handle on its connection, so `--drop-connection-every N` puts this
relay on the public port (terminating TLS itself) and forwards to granian on a unix socket.
It reads only the 9-byte HTTP/2 frame headers the client sends, counts HEADERS frames (one per
request), and when the count crosses a multiple of N it aborts both sides without forwarding
that chunk: the request that crossed it and every request still awaiting an answer on that
connection are lost in flight, as when a provider's front end goes away. Throughput in this
mode is the relay's, a few thousand requests/s; it is for fault tests, not benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9
HEADERS = 0x1


class FrameCounter:
    """Counts HEADERS frames in a client's byte stream, fed in arbitrary chunks."""

    def __init__(self) -> None:
        self._skip = len(PREFACE)
        self._head = b""

    def feed(self, data: bytes) -> int:
        count, i, n = 0, 0, len(data)
        while i < n:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            take = data[i : i + FRAME_HEADER - len(self._head)]
            self._head += take
            i += len(take)
            if len(self._head) == FRAME_HEADER:
                if self._head[3] == HEADERS:
                    count += 1
                self._skip = int.from_bytes(self._head[:3], "big")
                self._head = b""
        return count


class DropRelay:
    def __init__(self, upstream: Path, every: int) -> None:
        self._upstream = upstream
        self._every = every
        self._requests = 0
        self.drops = 0

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> asyncio.Server:
        return await asyncio.start_server(self._handle, host, port, ssl=tls, backlog=1024)

    def _due(self, new_requests: int) -> bool:
        before = self._requests
        self._requests += new_requests
        return self._requests // self._every > before // self._every

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self._upstream))
        except OSError:
            writer.transport.abort()
            return
        back = asyncio.create_task(pipe(up_reader, writer))
        counter = FrameCounter()
        try:
            while data := await reader.read(65536):
                if self._due(counter.feed(data)):
                    self.drops += 1
                    writer.transport.abort()
                    up_writer.transport.abort()
                    return
                up_writer.write(data)
                await up_writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            await close_both(back, writer, up_writer)


async def close_both(
    back: asyncio.Task[None], writer: asyncio.StreamWriter, up_writer: asyncio.StreamWriter
) -> None:
    """Ends a relayed connection: the copy back to the client, then both sockets."""
    back.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await back
    for side in (writer, up_writer):
        side.transport.abort()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until either side ends, then aborts the writer."""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.transport.abort()
