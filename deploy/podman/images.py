"""Build pushfan's container images with podman and no container registry.

    python3 deploy/podman/images.py [bases|app|all] [--rebuild-bases]

`bases`: one image per Debian package set, made by `mmdebstrap --variant=minbase` and
`podman import` (Python for the Dockerfile's PYTHON_IMAGE; RabbitMQ, Redis, PostgreSQL and
Prometheus for the compose stack). A base is rebuilt only when its recipe changed (the
recipe's hash is the image label `org.pushfan.recipe`) or with --rebuild-bases.

`app`: deploy/Dockerfile's default target (the production image: runtime dependencies only)
and its `simulators` target, built on the Python base. pip inside the build uses the host's
pip configuration: the configuration files pip reads here, every local file or directory
they or the PIP_* variables name (CA bundle, constraints, local indexes) mounted read-only
at the same path, and the PIP_* variables passed as build arguments. No index address is
written into the repository.

Standard library only; podman reads deploy/podman/containers.conf (CONTAINERS_CONF).
Prints one line per image with its size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SUITE = "bookworm"
RECIPE_LABEL = "org.pushfan.recipe"

# Documentation, manuals and translations are left out of every base.
SLIM = [
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
]


@dataclass(frozen=True)
class Base:
    """A base image: Debian packages, mmdebstrap hooks, and `podman import --change`s."""

    image: str
    packages: tuple[str, ...]
    options: tuple[str, ...] = ()  # more mmdebstrap options: hooks, dpkg path filters
    changes: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default=())  # repo files the hooks copy in

    def recipe(self) -> str:
        parts = [SUITE, *self.packages, *SLIM, *self.options, *self.changes]
        parts += [(ROOT / f).read_text() for f in self.files]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _hook(script: str) -> str:
    return f"--customize-hook={script}"


PYTHON = Base(
    "localhost/debian-python:3.11-bookworm",
    ("python3", "python3-venv", "python-is-python3", "ca-certificates"),
    changes=('CMD ["python3"]',),
)

RABBITMQ = Base(
    "localhost/debian-rabbitmq:bookworm",
    ("rabbitmq-server",),
    options=(
        # The package's env file pins the node to localhost; a container is reached by name.
        _hook("rm -f $1/etc/rabbitmq/rabbitmq-env.conf $1/etc/rabbitmq/rabbitmq.conf"),
        _hook("mkdir -p $1/etc/rabbitmq/conf.d && chroot $1 chown -R rabbitmq: /etc/rabbitmq"),
    ),
    changes=(
        "USER rabbitmq",
        # The server itself, not Debian's wrapper (which logs to files); logs to stdout.
        "ENV PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV RABBITMQ_LOGS=-",
        "ENV HOME=/var/lib/rabbitmq",
        "WORKDIR /var/lib/rabbitmq",
        "EXPOSE 5672",
        "EXPOSE 15672",
        "EXPOSE 15692",
        'CMD ["rabbitmq-server"]',
    ),
)

REDIS = Base(
    "localhost/debian-redis:bookworm",
    ("redis-server",),
    options=(_hook("mkdir -p $1/data && chroot $1 chown redis: /data"),),
    changes=(
        "USER redis",
        "WORKDIR /data",
        "EXPOSE 6379",
        # Reachable from the other containers, like the upstream image.
        'CMD ["redis-server", "--protected-mode", "no"]',
    ),
)

POSTGRES = Base(
    "localhost/debian-postgres:bookworm",
    ("postgresql-15", "locales"),
    options=(
        # The package's own cluster: the entrypoint makes one in the data volume instead.
        _hook("rm -rf $1/var/lib/postgresql/15 $1/etc/postgresql/15"),
        _hook("mkdir -p $1/var/lib/postgresql/data $1/run/postgresql"),
        "--skip=cleanup/run",  # keep /run/postgresql, the server's and pg_isready's socket
        _hook("chroot $1 chown -R postgres: /var/lib/postgresql /run/postgresql"),
        "--customize-hook=copy-in deploy/podman/postgres-entrypoint.sh /usr/local/bin",
    ),
    changes=(
        "USER postgres",
        "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin",
        "ENV PGDATA=/var/lib/postgresql/data",
        "EXPOSE 5432",
        'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]',
        'CMD ["postgres"]',
    ),
    files=("deploy/podman/postgres-entrypoint.sh",),
)

PROMETHEUS = Base(
    "localhost/debian-prometheus:bookworm",
    ("prometheus",),
    options=(
        # The classic web UI's time-zone tables; the API and the targets page do without.
        "--dpkgopt=path-exclude=/usr/share/javascript/moment-timezone/data/*",
        _hook("mkdir -p $1/prometheus && chroot $1 chown prometheus: /prometheus"),
    ),
    changes=(
        "USER prometheus",
        "WORKDIR /prometheus",
        "EXPOSE 9090",
        'ENTRYPOINT ["/usr/bin/prometheus"]',
        'CMD ["--config.file=/etc/prometheus/prometheus.yml"]',
    ),
)

BASES = (PYTHON, RABBITMQ, REDIS, POSTGRES, PROMETHEUS)

# The application images: deploy/Dockerfile's targets.
APP_IMAGES = {"runtime": "pushfan:dev", "simulators": "pushfan-simulators:dev"}

# PIP_* variables the Dockerfile's build stage declares as ARGs (the ones that locate packages).
PIP_BUILD_ARGS = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_TRUSTED_HOST",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_CONSTRAINT",
    "PIP_DEFAULT_TIMEOUT",
)


def podman(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        ["podman", *args], check=True, text=True, stdout=subprocess.PIPE if capture else None
    )
    return result.stdout if capture else ""


def image_label(image: str, label: str) -> str | None:
    result = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Labels}}", image],
        text=True,
        capture_output=True,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout.strip() or "null") or {}
    return labels.get(label)


def build_base(base: Base, rebuild: bool) -> None:
    recipe = base.recipe()
    if not rebuild and image_label(base.image, RECIPE_LABEL) == recipe:
        print(f"{base.image}: cached", flush=True)
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pushfan-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        cmd = [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            f"--include={','.join(base.packages)}",
            *SLIM,
            *base.options,
            SUITE,
            str(tar),
        ]
        subprocess.run(cmd, check=True, cwd=ROOT)
        changes = [*base.changes, f"LABEL {RECIPE_LABEL}={recipe}"]
        changes_args = [f"--change={c}" for c in changes]
        podman("import", "--quiet", *changes_args, str(tar), base.image, capture=True)
    print(f"{base.image}: built in {time.monotonic() - started:.0f} s", flush=True)


def _local_paths(key: str, value: str) -> set[str]:
    """The local files and directories a pip option names. A local index (`file://.../simple`)
    links its packages relative to itself (`../../files/...`): its parent goes in whole."""
    paths = set()
    for word in value.split():
        path = word.removeprefix("file://").rstrip("/")
        if path.startswith("/") and Path(path).exists():
            paths.add(str(Path(path).parent) if key.endswith("index-url") else path)
    return paths


def pip_configuration() -> tuple[list[str], list[str]]:
    """The host's pip configuration as `podman build` arguments: (-v mounts, --build-arg)."""

    def pip(*args: str) -> str:
        cmd = [sys.executable, "-m", "pip", *args]
        return subprocess.run(cmd, check=True, text=True, capture_output=True).stdout

    paths = {
        line.strip().rsplit(", exists:", 1)[0]
        for line in pip("config", "debug").splitlines()
        if line.strip().endswith(", exists: True")
    }
    for line in pip("config", "list").splitlines():  # global.cert='/etc/ssl/...'
        if "=" in line:
            key, value = line.split("=", 1)
            paths |= _local_paths(key, value.strip("'\""))
    build_args = [f"{n}={os.environ[n]}" for n in PIP_BUILD_ARGS if os.environ.get(n)]
    for arg in build_args:
        name, value = arg.split("=", 1)
        paths |= _local_paths(name.lower().replace("_", "-"), value)
    home = str(Path.home())
    mounts = []
    for path in sorted(paths):
        inside = "/root" + path[len(home) :] if path.startswith(home + "/") else path
        mounts.append(f"--volume={path}:{inside}:ro")
    return mounts, [f"--build-arg={a}" for a in build_args]


def build_app() -> None:
    mounts, build_args = pip_configuration()
    for target, image in APP_IMAGES.items():
        started = time.monotonic()
        podman(
            "build",
            "--format=docker",  # keeps HEALTHCHECK (the OCI format has none)
            "--network=host",
            f"--build-arg=PYTHON_IMAGE={PYTHON.image}",
            *build_args,
            *mounts,
            f"--target={target}",
            "--file=deploy/Dockerfile",
            "--ignorefile=deploy/Dockerfile.dockerignore",
            f"--tag={image}",
            str(ROOT),
        )
        print(f"{image}: built in {time.monotonic() - started:.0f} s", flush=True)


def print_sizes(images: list[str]) -> None:
    print("\nimage sizes (podman image ls):")
    for image in images:
        size = podman("image", "ls", "--format", "{{.Size}}", image, capture=True).split("\n")[0]
        print(f"  {image:45} {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["bases", "app", "all"], default="all")
    parser.add_argument("--rebuild-bases", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("CONTAINERS_CONF", str(HERE / "containers.conf"))
    os.chdir(ROOT)
    built: list[str] = []
    if args.what in ("bases", "all"):
        # mmdebstrap mostly waits on downloads and dpkg: the bases build side by side.
        with ThreadPoolExecutor(max_workers=len(BASES)) as pool:
            for future in [pool.submit(build_base, b, args.rebuild_bases) for b in BASES]:
                future.result()
        built += [b.image for b in BASES]
    elif image_label(PYTHON.image, RECIPE_LABEL) is None:
        build_base(PYTHON, rebuild=False)
    if args.what in ("app", "all"):
        build_app()
        built += list(APP_IMAGES.values())
    print_sizes(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
