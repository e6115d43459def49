"""The compose stack and the Kubernetes manifests run the same images, commands and settings.

A container in k8s/ is the compose service of the same name: same image (the dev overlay's
rendered name is the compose file's), same `pushfan` arguments, and the same effective
Settings except where a deployment must differ (where the services and the providers are,
the apps and their keys, the environment's name and log level).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy import manifests
from tests.fixtures.deploy import SettingsFromEnv

# Fields each deployment sets for itself: addresses of RabbitMQ/Redis/PostgreSQL and of the
# providers (the simulators in compose, which Web Push may reach on a private host), the
# apps with their credentials, the CA that trusts the simulators, the environment's name
# and verbosity, and whether its cookies are Secure (compose turns them on for localhost;
# in k8s they follow the environment).
PER_DEPLOYMENT = {
    "web_push_dev_hosts",
    "secure_cookies",
    "environment",
    "log_level",
    "amqp_url",
    "redis_url",
    "database_url",
    "apns_base_url",
    "apns_sandbox_url",
    "fcm_base_url",
    "fcm_token_url",
    "ca_file",
    "apps",
}
WORKLOADS = ("Deployment", "Job")


def k8s_containers(overlay: str) -> dict[str, tuple[list[manifests.Doc], manifests.Doc]]:
    docs = manifests.build(overlay)
    return {
        c["name"]: (docs, c)
        for d in docs
        if d["kind"] in WORKLOADS
        for c in manifests.containers(d)
    }


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(manifests.compose()["services"])


def test_every_k8s_process_is_a_compose_service_with_the_same_image_and_command(
    services: dict[str, Any],
) -> None:
    """Same names, `pushfan:dev` in both (the dev overlay), identical arguments; compose's
    other pushfan services are the three simulators and the one-shot credentials writer."""
    containers = k8s_containers("dev")
    for name, (_, container) in containers.items():
        service = services[name]
        assert container["image"] == service["image"] == "pushfan:dev", name
        assert container["args"] == service["command"], name
    rest = {n for n, s in services.items() if s.get("image", "").startswith("pushfan")}
    assert rest - set(containers) == {"credentials", "sim-apns", "sim-fcm", "sim-web"}


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_every_overlay_renames_the_one_image_compose_builds(overlay: str) -> None:
    """k8s/base names the image `pushfan`, the repository compose tags; an overlay may only
    move it to a registry (same last path part) and pin a tag."""
    for name, (_, container) in k8s_containers(overlay).items():
        repository = container["image"].rsplit(":", 1)[0]
        assert repository.rsplit("/", 1)[-1] == "pushfan", (overlay, name)


def test_the_broker_runs_the_same_rabbitmq_image(services: dict[str, Any]) -> None:
    """The RabbitmqCluster's image is the compose broker's (upstream name, same version)."""
    for overlay in manifests.OVERLAYS:
        cluster = manifests.one(manifests.build(overlay), "RabbitmqCluster", "pushfan-rabbitmq")
        assert cluster["spec"]["image"] == services["rabbitmq"]["image"], overlay


def test_effective_settings_agree_except_per_deployment(
    services: dict[str, Any], settings_from_env: SettingsFromEnv
) -> None:
    """Queue names and type, prefetch, concurrency, drain deadline, ports, batch sizes and
    every other tunable come out the same from the compose env and the k8s env."""
    compared = 0
    for name, (docs, container) in k8s_containers("dev").items():
        k8s = settings_from_env(manifests.container_env(docs, container)).model_dump()
        compose = settings_from_env(services[name]["environment"]).model_dump()
        differ = {f for f in k8s if k8s[f] != compose[f]} - PER_DEPLOYMENT
        assert not differ, {name: {f: (compose[f], k8s[f]) for f in sorted(differ)}}
        compared += 1
    assert compared == 7  # migrate, api, expander, feedback, three senders
