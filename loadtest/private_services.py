"""Private Redis, Redis Sentinel and PostgreSQL servers that a fault scenario owns.

The shared services on 6379/5432 are never stopped, flushed or reconfigured by a drill:
a scenario that restarts, kills or cuts off a store starts its own on free loopback ports in
a temporary directory, points the stack at it (PUSHFAN_REDIS_URL, PUSHFAN_REDIS_SENTINELS,
PUSHFAN_DATABASE_URL) and removes it afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis as sync_redis

from loadtest.stack import free_port

PG_BIN = Path("/usr/lib/postgresql")


def _wait_port(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class PrivateRedis:
    """One redis-server process; `appendonly` turns on AOF with `appendfsync everysec`."""

    def __init__(
        self,
        workdir: Path,
        name: str = "redis",
        *,
        appendonly: bool = False,
        replica_of: int | None = None,
    ) -> None:
        self.port = free_port()
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> sync_redis.Redis:
        return sync_redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> None:
        args = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--protected-mode", "no",
        ]  # fmt: skip
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        log = (self.dir / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # an AOF is replayed before commands are served
            try:
                self.client().ping()
                return
            except sync_redis.exceptions.BusyLoadingError:
                time.sleep(0.05)
        raise TimeoutError("redis did not finish loading")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown (AOF flushed); SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)
        self.process = None

    def restart(self, sig: int = signal.SIGTERM, down_s: float = 0.0) -> None:
        self.stop(sig)
        time.sleep(down_s)
        self.start()


class SentinelGroup:
    """A master, one replica and three sentinels watching them as `service`."""

    def __init__(self, workdir: Path, service: str = "pushfan") -> None:
        self.service = service
        self.workdir = workdir
        self.master = PrivateRedis(workdir, "master")
        self.replica: PrivateRedis | None = None
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def start(self) -> None:
        self.master.start()
        self.replica = PrivateRedis(self.workdir, "replica", replica_of=self.master.port)
        self.replica.start()
        for n, port in enumerate(self.sentinel_ports):
            conf = self.workdir / f"sentinel-{n}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.workdir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 5000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            log = (self.workdir / f"sentinel-{n}.log").open("ab")
            self.sentinels.append(
                subprocess.Popen(
                    ["redis-server", str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
                )
            )
        for port in self.sentinel_ports:
            _wait_port(port)
        self._wait_replicated()

    def _wait_replicated(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = self.master.client().info("replication")
            if info.get("connected_slaves", 0) >= 1:
                return
            time.sleep(0.1)
        raise TimeoutError("the replica did not attach")

    def master_port(self) -> int:
        answer = sync_redis.Redis(port=self.sentinel_ports[0]).execute_command(
            "SENTINEL", "get-master-addr-by-name", self.service
        )
        return int(answer[1])

    def fail_master(self, timeout_s: float = 30) -> float:
        """SIGKILL the master; returns the seconds until the sentinels promoted the replica."""
        assert self.replica is not None
        old = self.master_port()
        killed = time.monotonic()
        self.master.stop(signal.SIGKILL)
        deadline = killed + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.master_port() != old:
                    return time.monotonic() - killed
            except sync_redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the sentinels did not fail over")

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        if self.replica is not None:
            self.replica.stop()
        self.master.stop()


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb, pg_ctl) run as the `postgres` user."""

    def __init__(self) -> None:
        versions = sorted(PG_BIN.glob("*/bin/pg_ctl"))
        if not versions:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = versions[-1].parent
        # Its own directory in /tmp: the server runs as `postgres`, which must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="pushfan-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        shutil.chown(self.root, "postgres")
        self._as_postgres(
            ["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"]
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, args: list[str]) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            ["pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
             "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)
