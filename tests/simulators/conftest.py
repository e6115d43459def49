"""Fixtures: throw-away credentials and simulators started as real subprocesses."""

from __future__ import annotations

import json
import os
import select
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from loadtest.credentials import (
    ApnsCredentials,
    FcmCredentials,
    write_apns_key,
    write_service_account,
)
from loadtest.simulators.oauth import GRANT_TYPE
from loadtest.stack import free_port

FIREBASE_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
PROJECT = "sim-project"


@dataclass
class Simulator:
    url: str
    process: subprocess.Popen[str]
    ca: Path

    def _verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca) if self.url.startswith("https") else True

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, http1=False, http2=True, verify=self._verify())

    def stats(self, **params: str) -> dict[str, Any]:
        # --drop-connection-every counts this request too, so it may be the one dropped;
        # reading the statistics again is harmless.
        for attempt in range(3):
            try:
                with httpx.Client(http1=False, http2=True, verify=self._verify()) as http:
                    return dict(http.get(f"{self.url}/_sim/stats", params=params).json())
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def start_simulator(argv: list[str], tls_dir: Path, timeout_s: float = 15.0) -> Simulator:
    """`python -m loadtest.simulators <argv>`; returns once it printed READY."""
    command = [sys.executable, "-m", "loadtest.simulators", *argv, "--port", str(free_port())]
    if "--h2c" not in argv:
        command += ["--tls-dir", str(tls_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("READY "):
        process.kill()
        process.wait()
        raise RuntimeError(f"simulator did not become ready: {command}")
    return Simulator(line.split()[1], process, tls_dir / "ca.pem")


def stop(simulator: Simulator) -> None:
    simulator.process.terminate()
    try:
        assert simulator.process.wait(10) == 0
    finally:
        if simulator.process.poll() is None:
            simulator.process.kill()
        if simulator.process.stdout is not None:
            simulator.process.stdout.close()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("simulators")


@pytest.fixture(scope="session")
def apns_creds(workdir: Path) -> ApnsCredentials:
    return write_apns_key(workdir / "apns")


@pytest.fixture(scope="session")
def fcm_creds(workdir: Path) -> FcmCredentials:
    # token_uri is not used by these tests' clients; they post to the simulator they run.
    return write_service_account(workdir / "fcm", PROJECT, "https://127.0.0.1/token")


def apns_argv(creds: ApnsCredentials, *extra: str) -> list[str]:
    return ["apns", "--auth-key", f"{creds.key_id}:{creds.team_id}:{creds.public_key_file}", *extra]


def fcm_argv(creds: FcmCredentials, *extra: str) -> list[str]:
    account = f"{creds.client_email}={creds.public_key_file}"
    return ["fcm", "--account", account, "--project", PROJECT, *extra]


@pytest.fixture(scope="session")
def simulators(workdir: Path) -> Iterator[Callable[..., Simulator]]:
    """Factory: starts a simulator that is stopped (and must exit cleanly) at session end."""
    started: list[Simulator] = []

    def factory(argv: list[str]) -> Simulator:
        simulator = start_simulator(argv, workdir / "tls")
        started.append(simulator)
        return simulator

    yield factory
    for simulator in started:
        stop(simulator)


def provider_token(creds: ApnsCredentials, iat: float | None = None) -> str:
    claims = {"iss": creds.team_id, "iat": int(time.time() if iat is None else iat)}
    return jwt.encode(claims, creds.key_file.read_text(), "ES256", {"kid": creds.key_id})


def assertion(creds: FcmCredentials, audience: str, **overrides: object) -> str:
    account = json.loads(creds.service_account_file.read_text())
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": creds.client_email,
        "aud": audience,
        "scope": FIREBASE_SCOPE,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode(claims, account["private_key"], "RS256")


async def access_token(http: httpx.AsyncClient, creds: FcmCredentials) -> str:
    url = f"{http.base_url}".rstrip("/") + "/token"
    answer = await http.post(
        "/token", data={"grant_type": GRANT_TYPE, "assertion": assertion(creds, url)}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])
