"""What a web push costs the sender beyond an APNs push: the providers alone, no network.

The real APNs and web provider clients send the same notification, batches of 500, to a
transport that answers at once (200 for APNs, 201 for web), alternately, `--rounds` times,
in this process; CPU is this process's user+system time over the pushes. What is left is
the per-push work of each client: for web the RFC 8291 encryption (a fresh P-256 key pair,
one ECDH, HKDF, AES-GCM) and the VAPID header; for APNs the apns-id and the path. The
network part (HTTP/2 client) is the same kind of work for both and is measured end to end
by `pushfan bench --web-fraction F`.

    python -m loadtest.bench_webpush [--rounds 6] [--batch 500]

Prints one line per round and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from loadtest.credentials import ApnsCredentials, write_apns_key
from loadtest.simulators.webpush_keys import derive
from pushfan import webpush
from pushfan.messages import Notification
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.apns_fast import FastApnsProvider
from pushfan.workers.providers.transport import Answer
from pushfan.workers.providers.web_push import WebPushProvider

NOTE = Notification(
    title="Global alert",
    body="pushfan bench: this is a test of the mass notification system.",
    data={"kind": "bench"},
    expires_at=2_000_000_000,
    collapse_id="8614cf8b-89fb-4b59-a71d-ce0738aa95fd",
)


class Instant:
    """A transport that answers every request at once with `status`."""

    def __init__(self, status: int) -> None:
        self._answer = Answer(status, {}, b"")

    async def post(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        extra: tuple[str, str] | None = None,
    ) -> Answer:
        return self._answer

    async def close(self) -> None:
        return None


def _cpu() -> float:
    return time.process_time()  # this process, every thread, user + system


def bench_app(creds: ApnsCredentials, vapid: str) -> AppConfig:
    """The benches' one app: APNs token auth with `creds`, Web Push with the VAPID key."""
    return AppConfig(
        name="bench",
        apns_topic="com.example.bench",
        apns_key_id=creds.key_id,
        apns_team_id=creds.team_id,
        apns_key_file=creds.key_file,
        vapid_private_key=vapid,
        vapid_subject="mailto:ops@pushfan.example",
    )


async def measure(rounds: int, batch: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="pushfan-bench-webpush-"))
    creds = write_apns_key(folder)
    vapid = webpush.b64url(
        ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    )
    app = bench_app(creds, vapid)
    settings = Settings(apps=[app])
    gate = asyncio.Semaphore(settings.sender_concurrency)
    apns = FastApnsProvider(settings, app, Instant(200), gate)
    web = WebPushProvider(settings, app, Instant(201), gate)
    ids = list(range(batch))
    apns_tokens = [os.urandom(32).hex() for _ in ids]
    subs = [derive(1, f"d{i}") for i in ids]
    web_tokens = [
        webpush.wire_token(
            f"https://fcm.googleapis.com/fcm/send/d{i}", f"{s.p256dh()} {webpush.b64url(s.auth)}"
        )
        for i, s in enumerate(subs)
    ]
    await apns.send(NOTE, ids, apns_tokens)  # warm-up: JWTs signed, code paths loaded
    await web.send(NOTE, ids, web_tokens)
    totals = {"apns": 0.0, "web": 0.0}
    for n in range(rounds):
        started = _cpu()
        result = await apns.send(NOTE, ids, apns_tokens)
        apns_us = (_cpu() - started) / batch * 1e6
        assert len(result.delivered) == batch
        started = _cpu()
        result = await web.send(NOTE, ids, web_tokens)
        web_us = (_cpu() - started) / batch * 1e6
        assert len(result.delivered) == batch
        totals["apns"] += apns_us
        totals["web"] += web_us
        print(f"round {n + 1}: apns {apns_us:.1f} µs/push, web {web_us:.1f} µs/push", flush=True)
    return {k: round(v / rounds, 1) for k, v in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    started = time.monotonic()
    means = asyncio.run(measure(args.rounds, args.batch))
    extra = round(means["web"] - means["apns"], 1)
    print(
        json.dumps(
            {
                "provider_cpu_us_per_push": means,
                "web_extra_us_per_push": extra,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
