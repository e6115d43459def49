"""deploy/podman: the registry-free image build and the compose override agree with the
Dockerfile, the compose file and the harness that drives them (offline; `make image` and
`make compose-test` build and run them for real)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from loadtest.compose_check import STARTED
from loadtest.compose_stack import HOST_PORTS
from tests.deploy import manifests

PODMAN = manifests.DEPLOY / "podman"
# The host's own services (and RabbitMQ's management, Prometheus and distribution ports).
HOST_SERVICE_PORTS = {5672, 15672, 15692, 25672, 6379, 5432}


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deploy_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def images() -> ModuleType:
    return load(PODMAN / "images.py")


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return manifests.compose()


@pytest.fixture(scope="module")
def local() -> dict[str, Any]:
    return manifests.compose(PODMAN / "compose.local.yml")


def dockerfile_stages() -> dict[str, str]:
    text = (manifests.DEPLOY / "Dockerfile").read_text()
    return {alias: base for base, alias in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)}


def test_override_swaps_only_the_infrastructure_images_for_local_bases(
    images: ModuleType, stack: dict[str, Any], local: dict[str, Any]
) -> None:
    """compose.local.yml names the bases images.py builds, for the upstream-image services
    only; the upstream names stay in docker-compose.yml."""
    bases = {b.image for b in images.BASES}
    for name, service in local["services"].items():
        assert service["image"] in bases, name
        assert not stack["services"][name]["image"].startswith("localhost/"), name
    assert set(local["services"]) == {"rabbitmq", "redis", "postgres", "prometheus"}
    assert images.PYTHON.image in bases


def test_local_broker_config_is_upstream_less_what_rabbitmq_3_10_refuses(
    stack: dict[str, Any], local: dict[str, Any]
) -> None:
    """Same settings as deploy/rabbitmq/rabbitmq.conf but `default_queue_type`, mounted at
    the same place; the other broker mounts are unchanged."""

    def settings(path: Path) -> set[str]:
        lines = [line.strip() for line in path.read_text().splitlines()]
        return {line for line in lines if line and not line.startswith("#")}

    upstream = settings(manifests.DEPLOY / "rabbitmq" / "rabbitmq.conf")
    assert settings(PODMAN / "rabbitmq.conf") == upstream - {"default_queue_type = quorum"}
    original, override = (
        stack["services"]["rabbitmq"]["volumes"],
        local["services"]["rabbitmq"]["volumes"],
    )
    assert [v for v in override if "rabbitmq.conf" not in v] == [
        v for v in original if "rabbitmq.conf" not in v
    ]
    target = [v.split(":")[1] for v in original if "rabbitmq.conf" in v]
    assert [v.split(":")[1] for v in override if "rabbitmq.conf" in v] == target
    assert (manifests.DEPLOY / "podman" / "rabbitmq.conf").exists()


def test_app_images_are_the_dockerfile_targets_compose_runs(
    images: ModuleType, stack: dict[str, Any]
) -> None:
    """images.py tags each Dockerfile target with the name compose gives it; the production
    image is the Dockerfile's default (last) target and copies the venv without the harness."""
    stages = dockerfile_stages()
    text = (manifests.DEPLOY / "Dockerfile").read_text()
    last = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)[-1]
    assert last == "runtime"
    assert re.search(r"^FROM base-runtime AS runtime\nCOPY --from=build /opt/venv", text, re.M)
    for target, image in images.APP_IMAGES.items():
        assert target in stages
        by_target = {
            s.get("build", {}).get("target", "runtime")
            for s in stack["services"].values()
            if s.get("image") == image
        }
        assert by_target == {target}, image


def test_pip_arguments_are_declared_and_no_index_address_is_written(images: ModuleType) -> None:
    """The PIP_* build arguments images.py passes are ARGs of the build stage; neither the
    Dockerfile nor deploy/podman holds an index address."""
    text = (manifests.DEPLOY / "Dockerfile").read_text()
    declared = set(re.findall(r"^ARG (PIP_[A-Z_]+)$", text, re.M))
    assert declared == set(images.PIP_BUILD_ARGS)
    address = re.compile(r"https?://[a-z0-9.-]+\.[a-z]{2,}|file:///[a-z]", re.I)
    for path in [manifests.DEPLOY / "Dockerfile", *PODMAN.glob("*.*")]:
        assert not address.search(path.read_text()), path


def test_local_paths_mount_an_index_from_its_root(images: ModuleType, tmp_path: Path) -> None:
    """A local PEP 503 index links its files relative to itself: its parent is mounted. A
    find-links folder or a CA bundle is mounted as it is; remote URLs and missing paths are not."""
    (tmp_path / "pypi" / "simple").mkdir(parents=True)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "ca.pem").write_text("")
    index = f"file://{tmp_path}/pypi/simple https://example.invalid/simple"
    assert images._local_paths("global.extra-index-url", index) == {str(tmp_path / "pypi")}
    assert images._local_paths("global.find-links", str(tmp_path / "wheels")) == {
        str(tmp_path / "wheels")
    }
    assert images._local_paths(":env:.cert", f"{tmp_path}/ca.pem") == {str(tmp_path / "ca.pem")}
    assert images._local_paths("global.find-links", str(tmp_path / "missing")) == set()


def test_pip_configuration_of_this_machine_is_mounted_read_only(images: ModuleType) -> None:
    """Every file pip reads here and every local path it names goes in read-only."""
    mounts, build_args = images.pip_configuration()
    for mount in mounts:
        source, _, mode = mount.removeprefix("--volume=").split(":")
        assert Path(source).exists() and mode == "ro", mount
    for arg in build_args:
        assert arg.removeprefix("--build-arg=").split("=")[0] in images.PIP_BUILD_ARGS


def test_requirement_files_come_from_the_pyproject_files() -> None:
    """Runtime = the product's dependencies; simulators = the extra plus the harness's own
    dependencies, never pushfan itself."""
    script = load(manifests.DEPLOY / "docker" / "requirements.py")
    product = tomllib.loads((manifests.ROOT / "pyproject.toml").read_text())["project"]
    harness = tomllib.loads((manifests.ROOT / "loadtest" / "pyproject.toml").read_text())["project"]
    runtime, simulators = script.requirements(product, harness)
    assert runtime == product["dependencies"]
    assert set(product["optional-dependencies"]["simulators"]) <= set(simulators)
    assert not [r for r in simulators if re.match(r"pushfan\b", r)]


def test_published_ports_are_movable_and_moved_off_the_host_services(
    stack: dict[str, Any],
) -> None:
    """Every published port is `${HOST_PORT_*:-default}`; the harness sets each variable,
    to a port none of the host's shared services uses."""
    raw = (manifests.DEPLOY / "docker-compose.yml").read_text()
    variables = set(re.findall(r'"\$\{(HOST_PORT_[A-Z_]+):-\d+\}:\d+"', raw))
    published = [p for s in stack["services"].values() for p in s.get("ports", [])]
    assert len(variables) == len(published)
    assert variables == set(HOST_PORTS)
    assert not set(HOST_PORTS.values()) & HOST_SERVICE_PORTS


def test_compose_test_starts_every_service_but_grafana(stack: dict[str, Any]) -> None:
    """Grafana has no Debian package: the only service the compose test leaves out."""
    assert set(stack["services"]) - set(STARTED) == {"grafana"}


def test_pushfan_services_are_non_root_and_read_only(stack: dict[str, Any]) -> None:
    """Every service from the pushfan images: read-only root, /tmp a tmpfs, no capabilities."""
    for name, service in stack["services"].items():
        if service.get("image", "").startswith("pushfan"):
            assert service["read_only"] is True, name
            assert service["tmpfs"] == ["/tmp"], name
            assert service["cap_drop"] == ["ALL"], name
            assert "user" not in service, f"{name}: the image's USER (10001) applies"
