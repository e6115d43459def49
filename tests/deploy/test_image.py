"""deploy/Dockerfile: multi-stage, slim, non-root, entrypoint `pushfan`, a healthcheck that
probes the right port for each process kind."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest

from tests.deploy import manifests

DOCKERFILE = manifests.DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    path = manifests.DEPLOY / "docker" / "healthcheck.py"
    spec = importlib.util.spec_from_file_location("healthcheck", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_multi_stage_slim_non_root_with_pushfan_entrypoint() -> None:
    """Two stages on a slim Python 3.11, a numeric non-root USER, ENTRYPOINT pushfan."""
    ins = instructions()
    args = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in ins if k == "ARG" and "=" in v}
    stages = [v for k, v in ins if k == "FROM"]
    assert len(stages) >= 2
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    users = [v for k, v in ins if k == "USER"]
    assert users and users[-1].split(":")[0] in {"${UID}", args.get("UID")}
    assert args["UID"] != "0"
    assert ("ENTRYPOINT", '["pushfan"]') in ins
    assert any(k == "HEALTHCHECK" for k, _ in ins)
    copied = [v.split()[-2] for k, v in ins if k == "COPY" and "--from" not in v]
    for source in copied:
        if source != ".":
            assert (manifests.ROOT / source).exists(), source


def test_image_exposes_the_default_ports() -> None:
    """EXPOSE lists the API's default port and the workers' metrics port."""
    from pushfan.settings import Settings

    exposed = {int(p) for k, v in instructions() if k == "EXPOSE" for p in v.split()}
    assert Settings.model_fields["api_port"].default in exposed
    assert 9100 in exposed


def test_healthcheck_probes_the_port_of_each_kind(healthcheck: ModuleType) -> None:
    """api -> PUSHFAN_API_PORT, worker -> PUSHFAN_METRICS_PORT, others have no endpoint."""
    url = healthcheck.health_url
    py = ["/opt/venv/bin/python", "/opt/venv/bin/pushfan"]
    assert url([*py, "api"], {}) == "http://127.0.0.1:8000/healthz"
    assert url([*py, "api"], {"PUSHFAN_API_PORT": "9000"}) == "http://127.0.0.1:9000/healthz"
    env = {"PUSHFAN_METRICS_PORT": "9100"}
    assert url([*py, "worker", "sender", "--provider", "apns"], env) == (
        "http://127.0.0.1:9100/healthz"
    )
    assert url([*py, "worker", "expander"], {}) is None  # metrics port 0: nothing to probe
    assert url([*py, "simulate", "apns", "--port", "8443"], env) is None
    assert url([*py, "migrate"], env) is None


def test_dockerignore_keeps_the_context_small() -> None:
    """The BuildKit ignore file beside the Dockerfile leaves out .venv, .git and tests."""
    ignored = (manifests.DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)
