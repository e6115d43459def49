"""deploy/docker-compose.yml run by podman-compose, from outside, the way a user drives it.

The stack runs with deploy/podman/compose.local.yml on top (the infrastructure images made
from Debian's packages) and every published port moved off the host's own services
(`HOST_PORT_*`). The harness reaches the stack only through those published ports and
through `podman-compose exec` / `podman` commands on its containers.

podman 4.3 (Debian 12) runs no health checks on its own without systemd, and podman-compose
then skips `condition: service_healthy` (and, with podman 4.3, can start a service before
one it depends on). So the harness starts the stack in stages in the compose file's
dependency order, with `--no-deps`: the next stage only once the services' own health checks
pass (`podman healthcheck run`, `wait_healthy`) and the one-shot services exited 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILES = (DEPLOY / "docker-compose.yml", DEPLOY / "podman" / "compose.local.yml")
CONTAINERS_CONF = DEPLOY / "podman" / "containers.conf"

# Host ports for the stack's published ports, clear of the host's RabbitMQ (5672, 15672,
# 15692, 25672), Redis (6379) and PostgreSQL (5432).
HOST_PORTS = {
    "HOST_PORT_API": 28000,
    "HOST_PORT_AMQP": 28672,
    "HOST_PORT_RABBITMQ_UI": 28673,
    "HOST_PORT_RABBITMQ_METRICS": 28692,
    "HOST_PORT_REDIS": 28379,
    "HOST_PORT_POSTGRES": 28432,
    "HOST_PORT_SIM_APNS": 28443,
    "HOST_PORT_SIM_FCM": 28444,
    "HOST_PORT_SIM_WEB": 28445,
    "HOST_PORT_PROMETHEUS": 28090,
    "HOST_PORT_GRAFANA": 28030,
}


class ComposeError(RuntimeError):
    """A podman or podman-compose command failed; the message carries its output."""


@dataclass
class ComposeStack:
    """One compose project: `up`, `down`, `exec`, and its containers by service name."""

    compose_command: list[str]
    project: str = "pushfan"
    ports: dict[str, int] = field(default_factory=lambda: dict(HOST_PORTS))

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
        env.update({name: str(port) for name, port in self.ports.items()})
        return env

    def url(self, port_name: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[port_name]}"

    def _run(self, cmd: list[str], timeout: float = 600) -> str:
        result = subprocess.run(
            cmd, env=self.env(), text=True, capture_output=True, timeout=timeout, cwd=ROOT
        )
        if result.returncode != 0:
            raise ComposeError(f"{' '.join(cmd)} -> {result.returncode}\n{result.stderr[-3000:]}")
        return result.stdout

    def compose(self, *args: str, timeout: float = 600) -> str:
        files = [part for f in COMPOSE_FILES for part in ("-f", str(f))]
        return self._run([*self.compose_command, *files, *args], timeout)

    def podman(self, *args: str, timeout: float = 600) -> str:
        return self._run(["podman", *args], timeout)

    def up(self, services: list[str]) -> None:
        """Start these services only (`--no-deps`): the caller starts them in the compose
        file's order, one stage after the other (see the module docstring)."""
        self.compose("up", "-d", "--no-build", "--no-deps", *services)

    def wait_exited(self, services: list[str], timeout_s: float) -> dict[str, int]:
        """Wait for one-shot services to finish; their exit codes."""
        names = [self.container(s) for s in services]
        codes = self.podman("wait", *names, timeout=timeout_s).split()
        return dict(zip(services, map(int, codes), strict=True))

    def down(self) -> None:
        """Remove the project's containers, network and volumes (a fresh stack next time)."""
        self.compose("down", "--volumes", "--timeout", "30")

    def container(self, service: str) -> str:
        names = self.podman(
            "ps",
            "--all",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.Names}}",
        ).split()
        if len(names) != 1:
            raise ComposeError(f"service {service}: expected one container, found {names}")
        return names[0]

    def inspect(self, service: str) -> dict[str, Any]:
        (info,) = json.loads(self.podman("inspect", self.container(service)))
        return dict(info)

    def exec(self, service: str, *cmd: str, timeout: float = 600) -> str:
        return self.compose("exec", "-T", service, *cmd, timeout=timeout)

    def logs(self, service: str, tail: int) -> str:
        """The container's output, stdout and stderr together."""
        cmd = ["podman", "logs", "--tail", str(tail), self.container(service)]
        result = subprocess.run(
            cmd, env=self.env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        return result.stdout

    def healthy(self, service: str) -> bool:
        """The service's own health check, run once (`podman healthcheck run`)."""
        result = subprocess.run(
            ["podman", "healthcheck", "run", self.container(service)],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.returncode == 0

    def wait_healthy(self, services: list[str], timeout_s: float) -> float:
        """Run each service's health check until it passes; the seconds it took."""
        started = time.monotonic()
        waiting = list(services)
        while waiting:
            waiting = [s for s in waiting if not self.healthy(s)]
            if waiting and time.monotonic() - started > timeout_s:
                logs = {s: self.logs(s, tail=30) for s in waiting}
                raise ComposeError(f"not healthy after {timeout_s:.0f} s: {logs}")
            if waiting:
                time.sleep(2)
        return time.monotonic() - started
