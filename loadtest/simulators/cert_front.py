"""The TLS front of the APNs simulator's certificate mode (`--client-ca`).

granian verifies client certificates but gives the app no handle on them, and APNs answers
per push from the certificate (environment, topics). So in this mode the simulator terminates
TLS here: the handshake verifies the client's certificate against the CA (required, or
optional when token-auth keys are also configured, as on Apple's hosts where both auth
methods share one port), the certificate is read once per connection, and the connection's
bytes go on to granian over loopback h2c. The app finds a connection's certificate by the
client address granian reports, which is this front's upstream socket (`Peers`).

Throughput in this mode is the front's (tens of thousands of small requests/s at best); the
token-auth benchmarks run without it.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from loadtest.simulators.apns_certauth import CertificateIdentity, identity_of
from loadtest.simulators.relay import close_both, pipe


class Peers:
    """Client address (as granian reports it, `host:port`) -> the certificate's identity,
    for the connections the front has open; absent: the client presented no certificate."""

    def __init__(self) -> None:
        self._by_client: dict[str, CertificateIdentity] = {}

    def get(self, client: str) -> CertificateIdentity | None:
        return self._by_client.get(client)

    def add(self, client: str, identity: CertificateIdentity) -> None:
        self._by_client[client] = identity

    def remove(self, client: str) -> None:
        self._by_client.pop(client, None)


def front_context(cert: Path, key: Path, client_ca: Path, required: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(cafile=str(client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["h2"])
    return ctx


class CertificateFront:
    def __init__(self, upstream_port: int, peers: Peers) -> None:
        self._upstream_port = upstream_port
        self.peers = peers

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> asyncio.Server:
        return await asyncio.start_server(self._handle, host, port, ssl=context, backlog=1024)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            writer.transport.abort()
            return
        host, port = up_writer.get_extra_info("sockname")[:2]
        client = f"{host}:{port}"
        if der:  # registered before the first byte reaches granian
            self.peers.add(client, identity_of(der))
        back = asyncio.create_task(pipe(up_reader, writer))
        try:
            await pipe(reader, up_writer)
        finally:
            await close_both(back, writer, up_writer)
            self.peers.remove(client)
