"""Sender CPU per push, the provider path alone: FastApnsProvider.send against the simulator.

    python -m loadtest.sender_cpu [--batches 200] [--prefetch 8] [--rounds 3]

Starts the APNs simulator (TLS, its own CA) and, in this process, sends `--batches` batches
of 500 pushes through the fast APNs provider and the default transport, `--prefetch` batches
at once under the process-wide concurrency gate, as a sender does. Prints this process's CPU
(all threads: the HTTP/2 client runs partly off the Python thread) per push for each round,
and their median. No broker, Redis or PostgreSQL: this is the part of a sender's cost the
provider, the fan-out and the transport make, the part `pushfan bench` cannot isolate.
Run it with another tree first on PYTHONPATH to compare revisions (loadtest/compare.py does
that for the end-to-end bench).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import uvloop

from loadtest.bench_simulators import free_port
from loadtest.credentials import write_apns_key
from pushfan.messages import Notification
from pushfan.settings import AppConfig, Settings
from pushfan.workers.providers.apns_fast import FastApnsProvider
from pushfan.workers.providers.build import build_transport
from pushfan.workers.providers.transport import TransportConfig

BATCH = 500
TOPIC = "com.example.bench"


async def rounds(
    url: str, ca: Path, app: AppConfig, batches: int, prefetch: int, count: int
) -> list[float]:
    settings = Settings(sender_prefetch=prefetch)
    transport = build_transport(settings.http_transport, TransportConfig(url, ca))
    gate = asyncio.Semaphore(settings.sender_concurrency)
    provider = FastApnsProvider(settings, app, transport, gate)
    notification = Notification(
        title="Bench", body="sender CPU per push", collapse_id="sender-cpu", data={"k": "v"}
    )
    ids = list(range(BATCH))
    tokens = [f"{n:064x}" for n in range(BATCH)]
    await provider.send(notification, ids[:50], tokens[:50])  # warm-up: connections, JWT
    results: list[float] = []

    async def consumer(queue: Iterator[int]) -> None:
        for _ in queue:
            result = await provider.send(notification, ids, tokens)
            assert len(result.delivered) == BATCH, result.reasons

    for _ in range(count):
        queue = iter(range(batches))
        started = time.process_time()
        await asyncio.gather(*(consumer(queue) for _ in range(prefetch)))
        results.append((time.process_time() - started) / (batches * BATCH) * 1e6)
    await transport.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches of 500 per round")
    parser.add_argument("--prefetch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        creds = write_apns_key(workdir / "apns")
        command = [
            sys.executable,
            "-m",
            "loadtest.simulators",
            "apns",
            "--auth-key",
            f"{creds.key_id}:{creds.team_id}:{creds.public_key_file}",
            "--port",
            str(free_port()),
            "--tls-dir",
            str(workdir / "tls"),
        ]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            raise RuntimeError("simulator did not start")
        app = AppConfig(
            name="bench",
            apns_topic=TOPIC,
            apns_key_id=creds.key_id,
            apns_team_id=creds.team_id,
            apns_key_file=creds.key_file,
        )
        try:
            per_round = uvloop.run(
                rounds(
                    line.split()[1],
                    workdir / "tls" / "ca.pem",
                    app,
                    args.batches,
                    args.prefetch,
                    args.rounds,
                )
            )
        finally:
            proc.terminate()
            proc.wait(10)
    median = statistics.median(per_round)
    rounded = ", ".join(f"{r:.1f}" for r in per_round)
    print(f"sender CPU per push (provider path): rounds {rounded} µs; median {median:.1f} µs")
    print(json.dumps({"cpu_us_per_push": round(median, 2), "rounds": per_round}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
