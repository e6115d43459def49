"""Benchmark of the provider simulators with h2load: requests/s per server core.

Starts each simulator (APNs, FCM) in h2c and TLS mode as a subprocess pinned to one core,
drives it with h2load (nghttp2-client) pinned to the other cores with valid credentials and
bodies, and divides the requests answered by the server process's CPU time. Prints a table
and one JSON line.

    python -m loadtest.bench_simulators [-n 100000] [-c 4] [-m 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import jwt

from loadtest.credentials import write_apns_key, write_service_account
from loadtest.simulators.oauth import GRANT_TYPE
from loadtest.stack import free_port

APNS_TOKENS = 1000  # distinct device tokens the APNs run cycles through
FCM_TOKEN = "cZ1ohKJ3TxA:APA91b" + "A" * 146
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    provider: str
    transport: str
    requests: int
    succeeded: int
    wall_req_s: float
    cpu_s: float
    req_s_per_core: float
    accepted: int


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def pinning() -> tuple[list[str], list[str]]:
    """taskset prefixes: the server on core 0, h2load on the rest (when there are cores)."""
    cores = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cores) < 2:
        return [], []
    rest = ",".join(str(core) for core in cores[1:])
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", rest]


def start(argv: list[str], server_pin: list[str]) -> tuple[subprocess.Popen[str], str]:
    command = [*server_pin, sys.executable, "-m", "loadtest.simulators", *argv]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"simulator did not start: {argv}")
    return proc, line.split()[1]


def h2load(
    url: str | None,
    uris: Path | None,
    body: Path,
    headers: dict[str, str],
    args: argparse.Namespace,
    pin: list[str],
) -> tuple[int, float]:
    command = [
        *pin,
        "h2load",
        "-n",
        str(args.n),
        "-c",
        str(args.c),
        "-m",
        str(args.m),
        "-d",
        str(body),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-i", str(uris)] if uris else [str(url)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    ok = re.search(r"(\d+) succeeded", out)
    rate = re.search(r"finished in [^,]+, ([\d.]+) req/s", out)
    statuses = re.search(r"status codes: (\d+) 2xx", out)
    if not (ok and rate and statuses):
        raise RuntimeError(out)
    return int(statuses.group(1)), float(rate.group(1))


def bench(provider: str, transport: str, workdir: Path, args: argparse.Namespace) -> Result:
    server_pin, client_pin = pinning()
    port = free_port()
    common = ["--port", str(port)] + (
        ["--h2c"] if transport == "h2c" else ["--tls-dir", str(workdir / "tls")]
    )
    body = workdir / f"{provider}.json"
    uris: Path | None = None
    if provider == "apns":
        creds = write_apns_key(workdir / "apns")
        argv = [
            "apns",
            *common,
            "--auth-key",
            f"{creds.key_id}:{creds.team_id}:{creds.public_key_file}",
        ]
        token = jwt.encode(
            {"iss": creds.team_id, "iat": int(time.time())},
            creds.key_file.read_text(),
            "ES256",
            {"kid": creds.key_id},
        )
        headers = {
            "authorization": f"bearer {token}",
            "apns-topic": "com.example.app",
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-collapse-id": "bench-alert",
        }
        body.write_text(json.dumps({"aps": {"alert": {"title": "Bench", "body": "Hello"}}}))
    else:
        base = "http" if transport == "h2c" else "https"
        creds_f = write_service_account(
            workdir / "fcm", "bench-project", f"{base}://127.0.0.1:{port}/token"
        )
        argv = [
            "fcm",
            *common,
            "--account",
            f"{creds_f.client_email}={creds_f.public_key_file}",
            "--project",
            "bench-project",
        ]
        headers = {"content-type": "application/json"}
        body.write_text(
            json.dumps(
                {
                    "message": {
                        "token": FCM_TOKEN,
                        "notification": {"title": "Bench", "body": "Hello"},
                        "android": {"collapse_key": "bench-alert", "priority": "high"},
                        "data": {"alert_id": "bench-alert"},
                    }
                }
            )
        )
    proc, url = start(argv, server_pin)
    try:
        if provider == "apns":
            uris = workdir / "apns-uris.txt"
            uris.write_text("".join(f"{url}/3/device/{i:064x}\n" for i in range(APNS_TOKENS)))
            target = None
        else:
            headers["authorization"] = "Bearer " + fcm_access_token(
                url, creds_f.service_account_file, workdir
            )
            target = f"{url}/v1/projects/bench-project/messages:send"
        before = cpu_seconds(proc.pid)
        succeeded, wall_rate = h2load(target, uris, body, headers, args, client_pin)
        cpu = cpu_seconds(proc.pid) - before
        accepted = stats(url, workdir)["accepted"]
    finally:
        proc.terminate()
        proc.wait(10)
    return Result(
        provider,
        transport,
        args.n,
        succeeded,
        round(wall_rate),
        round(cpu, 3),
        round(succeeded / cpu) if cpu else 0,
        accepted,
    )


def client(url: str, workdir: Path) -> httpx.Client:
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=workdir / "tls" / "ca.pem")
        if url.startswith("https")
        else True
    )
    return httpx.Client(http1=False, http2=True, verify=verify)


def fcm_access_token(url: str, account_file: Path, workdir: Path) -> str:
    account = json.loads(account_file.read_text())
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": account["client_email"],
            "aud": account["token_uri"],
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "iat": now,
            "exp": now + 3600,
        },
        account["private_key"],
        "RS256",
    )
    with client(url, workdir) as http:
        answer = http.post(f"{url}/token", data={"grant_type": GRANT_TYPE, "assertion": assertion})
        answer.raise_for_status()
        return str(answer.json()["access_token"])


def stats(url: str, workdir: Path) -> dict[str, int]:
    with client(url, workdir) as http:
        return dict(http.get(f"{url}/_sim/stats").json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="requests per run")
    parser.add_argument("-c", type=int, default=4, help="h2load clients (connections)")
    parser.add_argument("-m", type=int, default=100, help="concurrent streams per connection")
    args = parser.parse_args(argv)
    if shutil.which("h2load") is None:
        print("h2load not found: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="pushfan-bench-") as tmp:
        for provider in ("apns", "fcm"):
            for transport in ("h2c", "tls"):
                result = bench(provider, transport, Path(tmp), args)
                results.append(result)
                print(
                    f"{provider:5} {transport:4} {result.req_s_per_core:>8} req/s per core "
                    f"({result.wall_req_s} req/s wall, {result.succeeded}/{result.requests} 2xx,"
                    f" server cpu {result.cpu_s}s, recorded {result.accepted})",
                    flush=True,
                )
    print(json.dumps({"simulator_bench": [asdict(result) for result in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
