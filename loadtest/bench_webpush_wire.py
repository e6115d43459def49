"""What a web push costs the sender beyond an APNs push, with the real HTTP/2 transport.

Starts the APNs and Web Push simulators (TLS, their own CA, each pinned to core 0 when
`taskset` and two cores are there) and, in this process, sends the same notification through
the real APNs and web provider clients on the configured transport (`--transport`), batches of
`--batch`, alternately, `--rounds` times. CPU is this process's user+system time (every
thread: the transport's Rust or C threads too) over the pushes the simulators accepted.
What this leaves out of `pushfan bench --web-fraction F` is the sender's per-batch work
(broker, lease, record), the same for both providers.

    python -m loadtest.bench_webpush_wire [--rounds 8] [--batch 500] [--transport reqwest]

Prints one line per round and one JSON line (medians, and web / APNs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import uvloop
from cryptography.hazmat.primitives.asymmetric import ec

from loadtest.bench_clients import sim_accepted, sim_reset
from loadtest.bench_simulators import free_port, pinning, start
from loadtest.bench_webpush import NOTE, bench_app
from loadtest.credentials import ApnsCredentials, write_apns_key
from loadtest.simulators.webpush_keys import derive
from pushfan import webpush
from pushfan.settings import Settings
from pushfan.workers.providers.apns_fast import FastApnsProvider
from pushfan.workers.providers.build import build_transport
from pushfan.workers.providers.transport import TransportConfig
from pushfan.workers.providers.vapid import public_key_b64
from pushfan.workers.providers.web_push import OriginTransports, WebPushProvider


def _cpu() -> float:
    return time.process_time()  # this process, every thread, user + system


async def measure(
    args: argparse.Namespace,
    folder: Path,
    creds: ApnsCredentials,
    urls: tuple[str, str],
    vapid: str,
) -> dict[str, list[float]]:
    apns_url, web_url = urls
    app = bench_app(creds, vapid)
    ca = folder / "tls" / "ca.pem"
    settings = Settings(apps=[app], ca_file=ca, http_transport=args.transport)
    gate = asyncio.Semaphore(settings.sender_concurrency)
    config = TransportConfig(base_url=apns_url, ca_file=ca, timeout_s=settings.push_timeout_s)
    apns_transport = build_transport(args.transport, config)
    web_transports = OriginTransports(settings, lambda c: build_transport(args.transport, c))
    apns = FastApnsProvider(settings, app, apns_transport, gate)
    web = WebPushProvider(settings, app, web_transports, gate)
    ids = list(range(args.batch))
    apns_tokens = [os.urandom(32).hex() for _ in ids]
    web_tokens = []
    for i in ids:
        sub = derive(1, f"d{i}")
        keys = f"{sub.p256dh()} {webpush.b64url(sub.auth)}"
        web_tokens.append(webpush.wire_token(f"{web_url}/push/d{i}", keys))
    await apns.send(NOTE, ids, apns_tokens)  # warm-up: connections, JWTs, code paths
    await web.send(NOTE, ids, web_tokens)
    per_push: dict[str, list[float]] = {"apns": [], "web": []}
    for n in range(args.rounds):
        for name, provider, tokens in (("apns", apns, apns_tokens), ("web", web, web_tokens)):
            started = _cpu()
            result = await provider.send(NOTE, ids, tokens)
            per_push[name].append((_cpu() - started) / args.batch * 1e6)
            if len(result.delivered) != args.batch:
                raise RuntimeError(f"{name}: {len(result.delivered)} delivered, {result.reasons}")
        print(
            f"round {n + 1}: apns {per_push['apns'][-1]:.1f} µs/push, "
            f"web {per_push['web'][-1]:.1f} µs/push",
            flush=True,
        )
    await apns_transport.close()
    await web_transports.close()
    return per_push


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--transport", default="reqwest", choices=["reqwest", "curl"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pushfan-bench-webpush-wire-"))
    creds = write_apns_key(folder / "apns")
    key = ec.generate_private_key(ec.SECP256R1())
    vapid = webpush.b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    server_pin, client_pin = pinning()
    if client_pin:
        os.sched_setaffinity(0, {int(c) for c in client_pin[-1].split(",")})
    tls = ["--tls-dir", str(folder / "tls")]
    apns_sim, apns_url = start(
        [
            "apns",
            "--auth-key",
            f"{creds.key_id}:{creds.team_id}:{creds.public_key_file}",
            "--port",
            str(free_port()),
            *tls,
        ],
        server_pin,
    )
    web_port = free_port()
    web_sim, web_url = start(
        [
            "webpush",
            "--port",
            str(web_port),
            "--seed",
            "1",
            "--vapid-key",
            public_key_b64(key),
            *tls,
        ],
        server_pin,
    )
    ca = folder / "tls" / "ca.pem"
    try:
        sim_reset(apns_url, ca)
        sim_reset(web_url, ca)
        per_push = uvloop.run(measure(args, folder, creds, (apns_url, web_url), vapid))
        accepted = {"apns": sim_accepted(apns_url, ca), "web": sim_accepted(web_url, ca)}
    finally:
        for proc in (apns_sim, web_sim):
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    expected = (args.rounds + 1) * args.batch
    if accepted != {"apns": expected, "web": expected}:
        raise RuntimeError(f"the simulators accepted {accepted}, not {expected} each")
    medians = {k: round(statistics.median(v), 1) for k, v in per_push.items()}
    print(
        json.dumps(
            {
                "transport": args.transport,
                "cpu_us_per_push_median": medians,
                "web_over_apns": round(medians["web"] / medians["apns"], 2),
                "rounds": args.rounds,
                "batch": args.batch,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
