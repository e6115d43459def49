"""Check that RabbitMQ, Redis and PostgreSQL answer; start the ones that are installed but
stopped; otherwise explain how to get them."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    binary: str
    start: list[str]
    hint: str


def _postgres_start() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    version = versions[-1] if versions else "15"
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]


SERVICES = (
    Service(
        "RabbitMQ",
        5672,
        "rabbitmq-server",
        ["rabbitmq-server", "-detached"],
        "install it (apt-get install rabbitmq-server) or point PUSHFAN_AMQP_URL at a broker",
    ),
    Service(
        "Redis",
        6379,
        "redis-server",
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        "install it (apt-get install redis-server) or point PUSHFAN_REDIS_URL at a server",
    ),
    Service(
        "PostgreSQL",
        5432,
        "pg_ctlcluster",
        [],
        "install it (apt-get install postgresql) or point PUSHFAN_DATABASE_URL at a server",
    ),
)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_services(timeout_s: float = 60.0, log: Callable[[str], object] = print) -> list[str]:
    """Make sure each service answers; returns problems (empty when all are up)."""
    problems = []
    for service in SERVICES:
        if port_open(service.port):
            log(f"  {service.name:10} up on :{service.port}")
            continue
        if not shutil.which(service.binary) and not glob.glob(f"/usr/lib/*/bin/{service.binary}"):
            problems.append(f"{service.name} is not running on :{service.port}; {service.hint}")
            continue
        command = service.start or _postgres_start()
        log(f"  {service.name:10} down; starting: {' '.join(command)}")
        subprocess.run(command, check=False, capture_output=True)
        deadline = time.monotonic() + timeout_s
        while not port_open(service.port) and time.monotonic() < deadline:
            time.sleep(0.5)
        if port_open(service.port):
            log(f"  {service.name:10} started")
        else:
            problems.append(f"{service.name} did not start on :{service.port}; {service.hint}")
    return problems


if __name__ == "__main__":
    # `python3 -m loadtest.services`: usable before the project is installed (stdlib only).
    import sys

    found = ensure_services()
    for problem in found:
        print(f"! {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
