"""Client micro-benchmark: CPU µs per HTTP/2 request of each candidate client library.

Starts the APNs simulator (h2c and TLS with its own CA) pinned to one core, and in this
process, pinned to the other, sends N real APNs pushes (JWT, every APNs header, a rendered
body) through each client with `--window` requests in flight. For every request it checks the
status is 200 and that HTTP/2 carried it, and reads the body; every 100th answer's `apns-id`
header is read back. CPU is this process's user+system time (all threads: the Rust and C
clients run parts of their work off the Python thread) divided by requests. The simulator's
own count of accepted pushes must equal the requests sent.

    python -m loadtest.bench_clients [-n 20000] [--window 500] [--clients curl,reqwest,...]

Prints a table, the server's advertised SETTINGS_MAX_CONCURRENT_STREAMS, and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import jwt
import uvloop

from loadtest.bench_simulators import cpu_seconds, free_port, pinning
from loadtest.credentials import ApnsCredentials, write_apns_key
from pushfan.workers.providers.build import build_transport
from pushfan.workers.providers.transport import TransportConfig, TransportKind

TOPIC = "com.example.bench"
BODY = b'{"aps":{"alert":{"title":"Bench","body":"client benchmark push"},"sound":"default"}}'
TOKENS = [f"{n:064x}" for n in range(1000)]
SLOW = {"httpx": 0.15, "aioapns": 0.3}  # fraction of -n for the slow clients, to keep it short

Send = Callable[[str, list[tuple[str, str]]], Awaitable[tuple[int, int, str | None]]]


@dataclass
class Row:
    client: str
    transport: str
    requests: int
    ok: int
    http2: int
    wall_s: float
    req_per_s: float
    client_cpu_us: float
    server_cpu_us: float
    sim_accepted: int


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_max_streams(url: str, ca: Path | None) -> int | None:
    """The SETTINGS_MAX_CONCURRENT_STREAMS the server advertises (read with the h2 library)."""
    parts = urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock: socket.socket = raw
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(raw, server_hostname=parts.hostname)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    try:
        for _ in range(10):
            for event in conn.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    setting = event.changed_settings.get(
                        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
                    )
                    return int(setting.new_value) if setting else None
    finally:
        sock.close()
    return None


def headers_for(creds: ApnsCredentials) -> list[tuple[str, str]]:
    token = jwt.encode(
        {"iss": creds.team_id, "iat": int(time.time())},
        creds.key_file.read_text(),
        "ES256",
        {"kid": creds.key_id},
    )
    return [
        ("authorization", f"bearer {token}"),
        ("apns-topic", TOPIC),
        ("apns-push-type", "alert"),
        ("apns-priority", "10"),
        ("apns-expiration", str(int(time.time()) + 3600)),
        ("apns-collapse-id", "bench"),
        ("content-type", "application/json"),
    ]


Client = tuple[Send, Callable[[], Awaitable[None]]]


async def make_client(name: str, url: str, ca: Path | None, creds: ApnsCredentials) -> Client:
    """(send(path, headers) -> (status, http version, apns-id or None), close)."""
    if name in ("curl", "reqwest"):
        return _transport_client(name, url, ca)
    if name == "rnet":
        return _rnet_client(url, ca)
    if name == "httpx":
        return _httpx_client(url, ca)
    if name == "aioapns":
        return _aioapns_client(url, ca, creds)
    raise ValueError(f"unknown client {name!r}")


def _transport_client(name: str, url: str, ca: Path | None) -> Client:
    kind: TransportKind = name  # type: ignore[assignment]
    transport = build_transport(kind, TransportConfig(url, ca, max_connections=2))

    async def send_t(path: str, headers: list[tuple[str, str]]) -> tuple[int, int, str | None]:
        answer = await transport.post(path, headers, BODY)
        return answer.status, answer.http_version, answer.headers.get("apns-id")

    return send_t, transport.close


def _rnet_client(url: str, ca: Path | None) -> Client:
    import rnet

    client = rnet.Client(http2_only=True, verify=ca if ca else True)

    async def send_r(path: str, headers: list[tuple[str, str]]) -> tuple[int, int, str | None]:
        response = await client.post(url + path, headers=dict(headers), body=BODY)
        await response.bytes()
        version = 2 if response.version == rnet.Version.HTTP_2 else 1
        apns_id = response.headers.get("apns-id")
        return (
            int(response.status),
            version,
            apns_id.decode() if isinstance(apns_id, bytes) else apns_id,
        )

    async def close_r() -> None:
        return None

    return send_r, close_r


def _httpx_client(url: str, ca: Path | None) -> Client:
    import httpx

    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    hx = httpx.AsyncClient(http1=False, http2=True, verify=verify, timeout=30)

    async def send_h(path: str, headers: list[tuple[str, str]]) -> tuple[int, int, str | None]:
        response = await hx.post(url + path, headers=headers, content=BODY)
        version = 2 if response.http_version == "HTTP/2" else 1
        return response.status_code, version, response.headers.get("apns-id")

    return send_h, hx.aclose


def _aioapns_client(url: str, ca: Path | None, creds: ApnsCredentials) -> Client:
    from aioapns import APNs, NotificationRequest, PushType

    from pushfan.workers.providers.apns_aioapns import _protocol_for
    from pushfan.workers.providers.tls import client_context

    apns = APNs(
        key=creds.key_file.read_text(),
        key_id=creds.key_id,
        team_id=creds.team_id,
        topic=TOPIC,
        max_connections=2,
        max_connection_attempts=1,
        ssl_context=client_context(ca),
    )
    apns.pool.protocol_class = _protocol_for(url)
    message = json.loads(BODY)

    async def send_a(path: str, headers: list[tuple[str, str]]) -> tuple[int, int, str | None]:
        request = NotificationRequest(
            device_token=path.rsplit("/", 1)[1],
            message=message,
            notification_id=dict(headers).get("apns-id"),
            time_to_live=3600,
            priority=10,
            collapse_key="bench",
            push_type=PushType.ALERT,
        )
        answer = await apns.send_notification(request)
        return int(answer.status), 2, answer.notification_id  # aioapns speaks only h2

    async def close_a() -> None:
        apns.pool.close()

    return send_a, close_a


async def run_client(
    name: str,
    transport: str,
    url: str,
    ca: Path | None,
    creds: ApnsCredentials,
    n: int,
    window: int,
) -> tuple[int, int, float, float]:
    send, close = await make_client(name, url, ca, creds)
    base = headers_for(creds)
    # Warm up: connections, TLS, JIT-free caches; not measured.
    await asyncio.gather(*(send(f"/3/device/{TOKENS[i]}", base) for i in range(50)))
    ok = http2 = checked_ids = 0
    ids = [str(uuid.uuid4()) for _ in range(min(n, 1000))]
    counter = iter(range(n))

    # `window` loops, each sending its next request when the last was answered: the
    # harness adds one coroutine switch per request, the same for every client.
    async def loop() -> None:
        nonlocal ok, http2, checked_ids
        for i in counter:
            apns_id = ids[i % len(ids)]
            headers = [*base, ("apns-id", apns_id)]
            status, version, echoed = await send(f"/3/device/{TOKENS[i % len(TOKENS)]}", headers)
            ok += status == 200
            http2 += version == 2
            if i % 100 == 0:
                checked_ids += echoed == apns_id

    cpu0, wall0 = own_cpu(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(window)))
    wall, cpu = time.perf_counter() - wall0, own_cpu() - cpu0
    await close()
    if checked_ids != -(-n // 100):
        raise RuntimeError(f"{name}: apns-id header not read back ({checked_ids})")
    return ok, http2, wall, cpu


def sim_accepted(url: str, ca: Path | None) -> int:
    import httpx

    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    with httpx.Client(http1=False, http2=True, verify=verify) as client:
        return int(client.get(f"{url}/_sim/stats").json()["accepted"])


def sim_reset(url: str, ca: Path | None) -> None:
    import httpx

    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    with httpx.Client(http1=False, http2=True, verify=verify) as client:
        client.post(f"{url}/_sim/reset")


def bench(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], dict[str, int | None]]:
    creds = write_apns_key(workdir / "apns")
    server_pin, client_pin = pinning()
    if client_pin:
        os.sched_setaffinity(0, {int(c) for c in client_pin[-1].split(",")})
    rows: list[Row] = []
    streams: dict[str, int | None] = {}
    for transport in args.transports.split(","):
        port = free_port()
        net = ["--h2c"] if transport == "h2c" else ["--tls-dir", str(workdir / "tls")]
        command = [
            *server_pin,
            sys.executable,
            "-m",
            "loadtest.simulators",
            "apns",
            "--auth-key",
            f"{creds.key_id}:{creds.team_id}:{creds.public_key_file}",
            "--port",
            str(port),
            *net,
        ]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            raise RuntimeError("simulator did not start")
        url = line.split()[1]
        ca = workdir / "tls" / "ca.pem" if transport == "tls" else None
        try:
            streams[transport] = server_max_streams(url, ca)
            for name in args.clients.split(","):
                if name == "aioapns" and transport == "h2c":
                    continue  # aioapns speaks TLS only
                n = max(1000, int(args.n * SLOW.get(name, 1.0)))
                sim_reset(url, ca)
                server0 = cpu_seconds(proc.pid)
                ok, http2, wall, cpu = uvloop.run(
                    run_client(name, transport, url, ca, creds, n, args.window)
                )
                server = cpu_seconds(proc.pid) - server0
                accepted = sim_accepted(url, ca) - 50  # minus the warm-up
                rows.append(
                    Row(
                        name,
                        transport,
                        n,
                        ok,
                        http2,
                        round(wall, 2),
                        round(n / wall),
                        round(cpu / n * 1e6, 1),
                        round(server / n * 1e6, 1),
                        accepted,
                    )
                )
                print(_fmt(rows[-1]), file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    return rows, streams


def _fmt(r: Row) -> str:
    return (
        f"{r.client:8} {r.transport:4} {r.requests:7,} ok {r.ok:7,} h2 {r.http2:7,} "
        f"sim {r.sim_accepted:7,}  {r.req_per_s:8,}/s  client {r.client_cpu_us:7.1f} µs/req  "
        f"server {r.server_cpu_us:5.1f} µs/req"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests per fast client")
    parser.add_argument("--window", type=int, default=500, help="requests in flight")
    parser.add_argument("--clients", default="curl,reqwest,rnet,aioapns,httpx")
    parser.add_argument("--transports", default="h2c,tls")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pushfan-bench-clients-") as tmp:
        rows, streams = bench(args, Path(tmp))
    print(f"server SETTINGS_MAX_CONCURRENT_STREAMS: {streams}", file=sys.stderr)
    bad = [r for r in rows if r.ok != r.requests or r.http2 != r.requests]
    bad += [r for r in rows if r.sim_accepted != r.requests]
    print(json.dumps({"rows": [asdict(r) for r in rows], "max_concurrent_streams": streams}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
