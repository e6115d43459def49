"""A local pushfan stack as real processes: the simulators, the API and the workers.

Used by `pushfan demo`, the end-to-end tests and the benchmark. Every process is a child
started with the `pushfan` entry points the container image runs, each isolated by its own
schema, queue prefix and Redis key prefix, on free loopback ports. With `web=True` it also
runs the Web Push simulator and web senders; its subscriptions are seeded by derivation
(loadtest/simulators/webpush_keys.py), so the simulator can decrypt every push.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from loadtest.credentials import (
    write_apns_certificate,
    write_apns_key,
    write_service_account,
    write_vapid_key,
)
from loadtest.simulators.webpush_keys import web_subscription
from pushfan import apikeys, db, redis_client, topology
from pushfan.provider import Provider
from pushfan.seed import WebSubscriptionFn, seed_devices
from pushfan.settings import Settings


async def _seed_with_key(
    settings: Settings,
    devices: int,
    ios_fraction: float,
    apps: list[str],
    scopes: tuple[str, ...],
    web_fraction: float = 0.0,
    web_subscription: WebSubscriptionFn | None = None,
    sandbox_fraction: float = 0.0,
) -> str:
    await db.migrate(settings)
    pool = await db.create_pool(settings, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await seed_devices(
                conn,
                devices,
                ios_fraction=ios_fraction,
                apps=apps,
                web_fraction=web_fraction,
                web_subscription=web_subscription,
                sandbox_fraction=sandbox_fraction,
            )
        _, plaintext = await apikeys.create(pool, "stack", list(scopes))
    finally:
        await pool.close()
    return plaintext


async def _cleanup(settings: Settings) -> None:
    await db.drop_schema(settings)
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        await topology.delete_all(await connection.channel(), settings)
    client = redis_client.connect(settings)
    async for key in client.scan_iter(f"{settings.redis_prefix}*"):
        await client.delete(key)
    await client.aclose()


# Where the services are: a stack may run against private ones (loadtest/store_faults.py).
SERVICE_SETTINGS = (
    "amqp_url",
    "redis_url",
    "database_url",
    "redis_sentinels",
    "redis_sentinel_service",
)


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


# What the simulators need to verify signatures; pushfan itself never sees public keys.
SIMULATOR_ONLY = frozenset(
    {
        "apns_public_key_file",
        "apns_client_ca",
        "fcm_public_key_file",
        "fcm_client_email",
        "vapid_public_key",
    }
)
WEB_SIM_SEED = 1  # the web simulator's --seed: the subscriptions' keys derive from it


def _apns_credentials(
    folder: Path, app: str, certificate_apps: dict[str, tuple[str, ...]]
) -> dict[str, str]:
    """An app's APNs settings: a token key, or a certificate for the environments listed
    (issued by one CA per stack, the simulators' --client-ca)."""
    if app not in certificate_apps:
        key = write_apns_key(folder / app)
        return {
            "apns_key_id": key.key_id,
            "apns_team_id": key.team_id,
            "apns_key_file": str(key.key_file),
            "apns_public_key_file": str(key.public_key_file),
        }
    cert = write_apns_certificate(
        folder / "apns-certificates",
        f"com.example.{app}",
        environments=certificate_apps[app],
        name=app,
    )
    return {
        "apns_cert_file": str(cert.p12),
        "apns_cert_password": cert.password,
        "apns_client_ca": str(cert.ca),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), while it still runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def pids_of(name: str) -> list[int]:
    """Processes whose command name is exactly `name`."""
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


# The shared services' processes by kind: every PostgreSQL process (postmaster, backends,
# WAL writer), the RabbitMQ VM, Redis.
SERVICE_PROCESSES = {
    "postgresql": lambda: pids_of("postgres"),
    "broker": lambda: pids_of("beam.smp"),
    "redis": lambda: pids_of("redis-server"),
}


class CpuMeter:
    """CPU seconds and peak RSS per process kind between start() and stop()."""

    def __init__(self, kinds: dict[str, list[int]]) -> None:
        self.kinds = kinds
        self._start: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.rss: dict[str, float] = {}

    def _total(self, pids: list[int]) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in pids)

    def start(self) -> None:
        self._start = {kind: self._total(pids) for kind, pids in self.kinds.items()}

    def stop(self) -> None:
        for kind, pids in self.kinds.items():
            self.cpu[kind] = self._total(pids) - self._start[kind]
            self.rss[kind] = max((peak_rss_mb(pid) or 0.0) for pid in pids) if pids else 0.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """Configuration and children of one local stack; `env` is every child's environment."""

    name: str
    workdir: Path
    env: dict[str, str]
    api_url: str
    apns_url: str
    fcm_url: str
    apps: list[str]
    web_url: str | None = None  # the Web Push simulator, when the stack has web
    apns_sandbox_url: str = ""
    children: list[Child] = field(default_factory=list)
    _own_workdir: bool = False

    @classmethod
    def create(
        cls,
        name: str,
        apps: tuple[str, ...] = ("demo",),
        workdir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        web: bool = False,
        certificate_apps: dict[str, tuple[str, ...]] | None = None,
    ) -> Stack:
        """`certificate_apps`: the apps that use APNs certificate auth instead of a token
        key, each with the environments its certificate is for (("sandbox", "production"):
        a universal certificate)."""
        own = workdir is None
        workdir = workdir or Path(tempfile.mkdtemp(prefix=f"pushfan-{name}-"))
        workdir.mkdir(parents=True, exist_ok=True)
        apns_port, fcm_port, api_port = free_port(), free_port(), free_port()
        apns_url = f"https://127.0.0.1:{apns_port}"
        apns_sandbox_url = f"https://127.0.0.1:{free_port()}"
        fcm_url = f"https://127.0.0.1:{fcm_port}"
        web_host = f"127.0.0.1:{free_port()}" if web else None
        app_configs = []
        for app in apps:
            vapid = {}
            if web:
                creds = write_vapid_key(workdir / "credentials" / app)
                vapid = {
                    "vapid_private_key_file": str(creds.key_file),
                    "vapid_subject": "mailto:ops@pushfan.example",
                    "vapid_public_key": creds.public_key,
                }
            apns = _apns_credentials(workdir / "credentials", app, certificate_apps or {})
            fcm = write_service_account(
                workdir / "credentials" / app, f"{app}-project", f"{fcm_url}/token"
            )
            app_configs.append(
                {
                    "name": app,
                    "apns_topic": f"com.example.{app}",
                    **apns,
                    "fcm_project_id": fcm.project_id,
                    "fcm_service_account_file": str(fcm.service_account_file),
                    "fcm_public_key_file": str(fcm.public_key_file),
                    "fcm_client_email": fcm.client_email,
                    **vapid,
                }
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHFAN_")}
        env.update(
            {
                "PUSHFAN_DATABASE_SCHEMA": name,
                "PUSHFAN_QUEUE_PREFIX": name,
                "PUSHFAN_REDIS_PREFIX": f"{name}:",
                "PUSHFAN_API_PORT": str(api_port),
                "PUSHFAN_APNS_BASE_URL": apns_url,
                "PUSHFAN_APNS_SANDBOX_URL": apns_sandbox_url,
                "PUSHFAN_FCM_BASE_URL": fcm_url,
                "PUSHFAN_CA_FILE": str(workdir / "tls" / "ca.pem"),
                "PUSHFAN_APPS": json.dumps(
                    [{k: v for k, v in c.items() if k not in SIMULATOR_ONLY} for c in app_configs]
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if web_host:  # the simulator's endpoints are on loopback: a development exception
            env["PUSHFAN_WEB_PUSH_DEV_HOSTS"] = json.dumps([web_host])
        for key in ("PUSHFAN_AMQP_URL", "PUSHFAN_REDIS_URL", "PUSHFAN_DATABASE_URL"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(extra_env or {})
        stack = cls(
            name=name,
            workdir=workdir,
            env=env,
            api_url=f"http://127.0.0.1:{api_port}",
            apns_url=apns_url,
            fcm_url=fcm_url,
            apps=list(apps),
            web_url=f"https://{web_host}" if web_host else None,
            apns_sandbox_url=apns_sandbox_url,
            _own_workdir=own,
        )
        stack._app_configs = app_configs  # type: ignore[attr-defined]
        return stack

    # -- data ----------------------------------------------------------------------------------

    @property
    def providers(self) -> tuple[Provider, ...]:
        """The providers this stack simulates and runs senders for."""
        return tuple(p for p in Provider if p is not Provider.WEB or self.web_url)

    @property
    def simulators(self) -> tuple[str, ...]:
        """The names `sim_stats` takes: one simulator per provider, and the APNs sandbox host."""
        return (*(str(p) for p in self.providers), "apns-sandbox")

    def web_subscription(self) -> WebSubscriptionFn:
        """n -> (endpoint, keys) of a subscription the stack's Web Push simulator decrypts."""
        assert self.web_url, "a stack without web=True has no web simulator"
        return web_subscription(WEB_SIM_SEED, self.web_url)

    @property
    def settings(self) -> Settings:
        """What this stack's children read from their environment, for this process."""
        services: dict[str, Any] = {
            name: self.env[f"PUSHFAN_{name.upper()}"]
            for name in SERVICE_SETTINGS
            if f"PUSHFAN_{name.upper()}" in self.env
        }
        return Settings(
            database_schema=self.name,
            queue_prefix=self.name,
            redis_prefix=f"{self.name}:",
            **services,
        )

    def prepare(
        self,
        devices: int,
        *,
        ios_fraction: float = 0.5,
        scopes: tuple[str, ...] = ("alerts:send",),
        web_fraction: float = 0.0,
        sandbox_fraction: float = 0.0,
        apps: tuple[str, ...] | None = None,
    ) -> str:
        """Migrate the stack's schema, seed `devices` devices over its apps (a `web_fraction`
        of them subscriptions of the stack's Web Push simulator, `sandbox_fraction` of the iOS
        ones on the APNs sandbox) and create an API key with `scopes`; returns the key.
        `apps`: seed devices of these apps only (default: all the stack's)."""
        make = self.web_subscription() if web_fraction else None
        return asyncio.run(
            _seed_with_key(
                self.settings,
                devices,
                ios_fraction,
                list(apps) if apps is not None else self.apps,
                scopes,
                web_fraction,
                make,
                sandbox_fraction,
            )
        )

    def cleanup(self) -> None:
        """Drop the stack's schema, queues and Redis keys."""
        asyncio.run(_cleanup(self.settings))

    # -- processes ---------------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        log_path = self.workdir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "pushfan.cli.main", *args],
            env={**self.env, **(env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, process, log_path, args, env or {})
        self.children.append(child)
        return child

    def kill(self, child: Child, sig: int = signal.SIGKILL) -> None:
        os.killpg(child.process.pid, sig)

    def respawn(self, child: Child) -> Child:
        """Start the same process again (after a kill), waiting until it consumes."""
        if child.alive():
            raise RuntimeError(f"{child.name} is still running")
        self.children.remove(child)
        again = self.spawn(child.name, child.args, child.env)
        self.wait_for_log(again, "consuming", since=again.log_path.stat().st_size)
        return again

    def find(self, prefix: str) -> list[Child]:
        return [c for c in self.children if c.name.startswith(prefix)]

    def wait_for_log(self, child: Child, text: str, timeout_s: float = 30, since: int = 0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with child.log_path.open("rb") as log:
                log.seek(since)
                if text.encode() in log.read():
                    return
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{child.name} did not print {text!r}:\n{child.tail()}")

    def wait_for_http(self, child: Child, url: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"{child.name} is not answering {url}:\n{child.tail()}")

    def start_simulators(
        self,
        dead_fraction: float = 0.0,
        extra: list[str] | None = None,
        apns_extra: list[str] | None = None,
        fcm_extra: list[str] | None = None,
        web_extra: list[str] | None = None,
        revoked: tuple[str, ...] = (),
    ) -> None:
        """`revoked`: apps whose APNs key the APNs simulators do not know (every push of
        theirs is refused 403 InvalidProviderToken) until `grant_apns`."""
        configs = self._app_configs  # type: ignore[attr-defined]
        tls = ["--tls-dir", str(self.workdir / "tls")]
        faults = ["--seed", "1", "--dead-fraction", str(dead_fraction), *(extra or [])]
        apns_args = ["simulate", "apns", *tls, *faults]
        for c in configs:
            if "apns_key_id" in c and c["name"] not in revoked:
                apns_args += self._auth_key_args(c)
            if "apns_client_ca" in c and "--client-ca" not in apns_args:
                apns_args += ["--client-ca", c["apns_client_ca"]]
        fcm_args = ["simulate", "fcm", "--port", self.fcm_url.rsplit(":", 1)[1], *tls, *faults]
        for c in configs:
            fcm_args += [
                "--account",
                f"{c['fcm_client_email']}={c['fcm_public_key_file']}",
                "--project",
                c["fcm_project_id"],
            ]
        # The APNs simulator creates the CA first; the FCM one then reuses it.
        apns_args += apns_extra or []
        fcm_args += fcm_extra or []
        # Two APNs hosts, as Apple has: each refuses the other environment's tokens.
        apns = self.spawn(
            "sim-apns", [*apns_args, "--port", _port(self.apns_url), "--environment", "production"]
        )
        self.wait_for_log(apns, "READY")
        sandbox = [*apns_args, "--port", _port(self.apns_sandbox_url), "--environment", "sandbox"]
        fcm = self.spawn("sim-fcm", fcm_args)
        self.wait_for_log(self.spawn("sim-apns-sandbox", sandbox), "READY")
        self.wait_for_log(fcm, "READY")
        if self.web_url:
            port = self.web_url.rsplit(":", 1)[1]
            web_faults = [
                "--seed",
                str(WEB_SIM_SEED),
                "--dead-fraction",
                str(dead_fraction),
                *(extra or []),
            ]
            web_args = ["simulate", "webpush", "--port", port, *tls, *web_faults]
            for c in configs:
                web_args += ["--vapid-key", c["vapid_public_key"]]
            web = self.spawn("sim-web", [*web_args, *(web_extra or [])])
            self.wait_for_log(web, "READY")

    def grant_apns(self) -> None:
        """Restart both APNs simulators knowing every app's key (the revoked key fixed); their
        statistics start again from zero."""
        configs = self._app_configs  # type: ignore[attr-defined]
        for child in self.find("sim-apns"):
            self.kill(child)
            child.process.wait(timeout=10)
            self.children.remove(child)
            args = list(child.args)
            while "--auth-key" in args:
                at = args.index("--auth-key")
                del args[at : at + 2]
            keys = [a for c in configs if "apns_key_id" in c for a in self._auth_key_args(c)]
            since = child.log_path.stat().st_size
            again = self.spawn(child.name, [*args, *keys])
            self.wait_for_log(again, "READY", since=since)

    @staticmethod
    def _auth_key_args(config: dict[str, str]) -> list[str]:
        key = f"{config['apns_key_id']}:{config['apns_team_id']}:{config['apns_public_key_file']}"
        return ["--auth-key", key]

    def start_api(self) -> Child:
        api = self.spawn("api", ["api"])
        self.wait_for_http(api, f"{self.api_url}/healthz")
        return api

    def start_workers(
        self, senders_per_provider: int = 1, senders: dict[str, int] | None = None
    ) -> list[Child]:
        """The expander and `senders` sender processes per provider (default: the same
        number for both)."""
        counts = senders or {p: senders_per_provider for p in self.providers}
        started = [self.spawn("expander", ["worker", "expander"])]
        for provider, count in counts.items():
            for n in range(count):
                started.append(
                    self.spawn(
                        f"sender-{provider}-{n}", ["worker", "sender", "--provider", provider]
                    )
                )
        for child in started:
            self.wait_for_log(child, "consuming")
        return started

    def sim_stats(self, which: str, collapse_id: str | None = None) -> dict[str, Any]:
        """`/_sim/stats` of the "apns", "apns-sandbox", "fcm" or "web" simulator."""
        urls = {"apns": self.apns_url, "apns-sandbox": self.apns_sandbox_url, "fcm": self.fcm_url}
        url = urls.get(which) or self.web_url
        assert url, f"no {which} simulator in this stack"
        params = {"collapse_id": collapse_id} if collapse_id else None
        ca = ssl.create_default_context(cafile=str(self.workdir / "tls" / "ca.pem"))
        with httpx.Client(http2=True, verify=ca, timeout=30) as client:  # the sims speak h2 only
            response = client.get(f"{url}/_sim/stats", params=params)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def stop(self, timeout_s: float = 30) -> None:
        for child in reversed(self.children):
            if child.alive():
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()
        if self._own_workdir and os.environ.get("PUSHFAN_KEEP_WORKDIR") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
