"""The Kubernetes manifests agree with the application they run.

Ports, probe paths, PUSHFAN_* names, queue names, the prefetch and the drain deadline are
read from pushfan itself (Settings, QueueNames, the worker's health server) and from the
rendered manifests, never typed twice.
"""

from __future__ import annotations

import math
import re
import urllib.request
from typing import Any

import pytest
import yaml

from pushfan.metrics import serve_worker_endpoints
from pushfan.provider import Provider
from pushfan.settings import Settings
from pushfan.topology import QueueNames
from tests.deploy import manifests
from tests.deploy.manifests import Doc
from tests.fixtures.deploy import SettingsFromEnv

ENV_NAME = re.compile(r"\bPUSHFAN_[A-Z0-9_]+\b")
WORKLOADS = ("Deployment", "Job")


def workloads(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    return [(d, c) for d in docs if d["kind"] in WORKLOADS for c in manifests.containers(d)]


def env_field(name: str) -> str:
    return name.removeprefix("PUSHFAN_").split("__")[0].lower()


def port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    assert isinstance(number, int)
    return number


def prestop_seconds(container: Doc) -> int:
    pre = container.get("lifecycle", {}).get("preStop", {})
    return int(pre.get("sleep", {}).get("seconds", 0))


def sender_provider(container: Doc) -> Provider | None:
    args = container["args"]
    if args[:2] != ["worker", "sender"]:
        return None
    return Provider(args[args.index("--provider") + 1])


def test_every_pushfan_env_name_is_a_settings_field() -> None:
    """Every PUSHFAN_* name anywhere under k8s/ or deploy/ is a field of Settings."""
    fields = set(Settings.model_fields)
    seen: dict[str, set[str]] = {}
    roots = [manifests.K8S, manifests.DEPLOY]
    for path in [p for root in roots for p in root.rglob("*") if p.is_file()]:
        if path.suffix in {".yaml", ".yml", ".md", ".py", ".json", ""} or path.name.startswith(
            "Dockerfile"
        ):
            for name in ENV_NAME.findall(path.read_text(errors="replace")):
                seen.setdefault(name, set()).add(str(path.relative_to(manifests.ROOT)))
    unknown = {n: sorted(p) for n, p in seen.items() if env_field(n) not in fields}
    assert not unknown, f"not Settings fields: {unknown}"
    assert len(seen) > 10  # the scan found the manifests' names at all


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_every_container_runs_a_pushfan_command_with_valid_settings(
    overlay: str, settings_from_env: SettingsFromEnv
) -> None:
    """Each container's args are a real `pushfan` subcommand and its env builds Settings."""
    docs = manifests.build(overlay)
    for _, container in workloads(docs):
        assert manifests.is_pushfan_command(container["args"]), container["args"]
        assert "command" not in container, "the image's entrypoint is `pushfan`"
        settings = settings_from_env(manifests.container_env(docs, container))
        assert "$(" not in settings.amqp_url.get_secret_value(), "unexpanded env reference"


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_ports_and_probes_match_what_the_process_listens_on(
    overlay: str, settings_from_env: SettingsFromEnv
) -> None:
    """The API's port is PUSHFAN_API_PORT, a worker's is PUSHFAN_METRICS_PORT; probes,
    Prometheus annotations and Services point at those ports and the real health paths."""
    docs = manifests.build(overlay)
    checked = 0
    for doc, container in workloads(docs):
        if doc["kind"] != "Deployment":
            continue
        settings = settings_from_env(manifests.container_env(docs, container))
        kind = container["args"][0]
        port = settings.api_port if kind == "api" else settings.metrics_port
        assert port != 0, f"{doc['metadata']['name']}: no port for probes and metrics"
        if kind != "api":  # the kubelet probes and Prometheus scrapes from outside the pod
            assert settings.metrics_host == "0.0.0.0", doc["metadata"]["name"]
        assert [p["containerPort"] for p in container["ports"]] == [port]
        assert port_number(container, container["livenessProbe"]["httpGet"]["port"]) == port
        assert port_number(container, container["readinessProbe"]["httpGet"]["port"]) == port
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        if "startupProbe" in container:
            assert port_number(container, container["startupProbe"]["httpGet"]["port"]) == port
        annotations = doc["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        checked += 1
    assert checked == 6  # api, expander, feedback, three senders (apns, fcm, web)
    for service in manifests.find(docs, "Service"):
        selector = service["spec"]["selector"]
        pods = [
            (d, c)
            for d, c in workloads(docs)
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        for _, container in pods:
            for sp in service["spec"]["ports"]:
                names = {p["name"] for p in container["ports"]}
                assert sp["targetPort"] in names, (service["metadata"]["name"], sp)


def test_worker_probe_paths_are_served_by_the_worker_health_server() -> None:
    """The probe paths in the sender manifest answer 200 from pushfan's worker endpoints."""
    deployment = manifests.one(manifests.build("production"), "Deployment", "pushfan-sender-apns")
    (container,) = manifests.containers(deployment)
    server = serve_worker_endpoints("127.0.0.1", 0, lambda: True)
    try:
        port = server.server_address[1]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            path = container[probe]["httpGet"]["path"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                assert r.status == 200, path
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_grace_period_covers_prestop_and_drain_deadline(
    overlay: str, settings_from_env: SettingsFromEnv
) -> None:
    """terminationGracePeriodSeconds > preStop sleep + PUSHFAN_DRAIN_DEADLINE_S, with a
    short preStop, so a worker always finishes its started batches before SIGKILL."""
    docs = manifests.build(overlay)
    for doc, container in workloads(docs):
        if doc["kind"] != "Deployment":
            continue
        settings = settings_from_env(manifests.container_env(docs, container))
        grace = manifests.pod_spec(doc)["terminationGracePeriodSeconds"]  # type: ignore[index]
        assert 0 < prestop_seconds(container) <= 10
        assert grace > prestop_seconds(container) + settings.drain_deadline_s


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_pods_are_locked_down_and_sized(overlay: str) -> None:
    """Non-root, read-only root, no capabilities, requests and limits on every container."""
    for doc, container in workloads(manifests.build(overlay)):
        pod = manifests.pod_spec(doc)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][part])


def _autoscaled_targets(docs: list[Doc]) -> set[str]:
    targets = {d["spec"]["scaleTargetRef"]["name"] for d in manifests.find(docs, "ScaledObject")}
    targets |= {
        d["spec"]["scaleTargetRef"]["name"] for d in manifests.find(docs, "HorizontalPodAutoscaler")
    }
    return targets


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_autoscalers_own_replicas(overlay: str) -> None:
    """API and every sender are autoscaled, and their Deployments set no `replicas`; every
    Deployment has a PodDisruptionBudget."""
    docs = manifests.build(overlay)
    targets = _autoscaled_targets(docs)
    senders = {f"pushfan-sender-{p}" for p in QueueNames.for_prefix("pushfan").send}
    assert {"pushfan-api", *senders} <= targets
    deployments = {d["metadata"]["name"]: d for d in manifests.find(docs, "Deployment")}
    assert targets <= set(deployments)
    for name, deployment in deployments.items():
        assert ("replicas" in deployment["spec"]) == (name not in targets), name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pdbs = [
            p
            for p in manifests.find(docs, "PodDisruptionBudget")
            if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(pdbs) == 1, name
    api_hpa = manifests.one(docs, "HorizontalPodAutoscaler", "pushfan-api")
    assert [m["resource"]["name"] for m in api_hpa["spec"]["metrics"]] == ["cpu"]


def _sender(docs: list[Doc], name: str) -> tuple[Doc, Provider]:
    deployment = manifests.one(docs, "Deployment", name)
    (container,) = manifests.containers(deployment)
    provider = sender_provider(container)
    assert provider is not None, f"{name} is not a sender"
    return container, provider


def _external_hpas(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        h
        for h in manifests.find(docs, "HorizontalPodAutoscaler")
        if any(m["type"] == "External" for m in h["spec"]["metrics"])
    ]


# Each overlay scales its senders one way: KEDA, or an HPA on prometheus-adapter's metric.
KEDA_OVERLAYS = [
    o for o in manifests.OVERLAYS if manifests.find(manifests.build(o), "ScaledObject")
]
ADAPTER_OVERLAYS = [o for o in manifests.OVERLAYS if _external_hpas(manifests.build(o))]


def test_every_overlay_autoscales_its_senders_exactly_one_way() -> None:
    assert KEDA_OVERLAYS and ADAPTER_OVERLAYS
    assert sorted(KEDA_OVERLAYS + ADAPTER_OVERLAYS) == manifests.OVERLAYS


@pytest.mark.parametrize("overlay", KEDA_OVERLAYS)
def test_keda_triggers_match_queues_prefetch_and_credentials(
    overlay: str, settings_from_env: SettingsFromEnv
) -> None:
    """Each ScaledObject watches its sender's queue (QueueNames) over http in QueueLength
    mode with value >= 2 x the sender's prefetch, authenticated from existing objects."""
    docs = manifests.build(overlay)
    scaled = manifests.find(docs, "ScaledObject")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} >= {
        "pushfan-sender-apns",
        "pushfan-sender-fcm",
        "pushfan-sender-web",
    }
    for so in scaled:
        container, provider = _sender(docs, so["spec"]["scaleTargetRef"]["name"])
        settings = settings_from_env(manifests.container_env(docs, container))
        (trigger,) = so["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "rabbitmq"
        assert meta["protocol"] == "http" and meta["mode"] == "QueueLength"
        assert meta["queueName"] == QueueNames.for_prefix(settings.queue_prefix).send[provider]
        assert float(meta["value"]) >= 2 * settings.sender_prefetch
        spec = so["spec"]
        assert spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert {"scaleUp", "scaleDown"} <= set(
            spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        )
        auth = manifests.one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        params = set()
        for ref in auth["spec"].get("secretTargetRef", []):
            assert ref["key"] in manifests.secret_data(ref["name"])
            params.add(ref["parameter"])
        for ref in auth["spec"].get("configMapTargetRef", []):
            url = manifests.one(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
            params.add(ref["parameter"])
            if ref["parameter"] == "host":
                namespace = so["metadata"]["namespace"]
                assert re.fullmatch(rf"http://pushfan-rabbitmq\.{namespace}\.svc:15672/", url)
        assert {"host", "username", "password"} <= params


@pytest.mark.parametrize("overlay", ADAPTER_OVERLAYS)
def test_external_metric_hpa_matches_adapter_rule_and_queues(
    overlay: str, settings_from_env: SettingsFromEnv
) -> None:
    """Without KEDA: each sender HPA asks prometheus-adapter for the metric its rule serves,
    for the sender's queue, with target >= 2 x prefetch."""
    docs = manifests.build(overlay)
    hpas = _external_hpas(docs)
    (rule,) = yaml.safe_load((manifests.K8S / "prometheus-adapter" / "rules.yaml").read_text())[
        "rules"
    ]["external"]
    (config,) = manifests.load_docs(manifests.K8S / "prometheus-adapter" / "adapter-config.yaml")
    assert yaml.safe_load(config["data"]["config.yaml"])["externalRules"] == [rule]
    series_regex = re.search(r'queue=~"(.+?)"', rule["seriesQuery"])
    assert series_regex is not None
    pattern = series_regex[1].encode().decode("unicode_escape")  # PromQL string -> regex
    for hpa in hpas:
        container, provider = _sender(docs, hpa["spec"]["scaleTargetRef"]["name"])
        settings = settings_from_env(manifests.container_env(docs, container))
        (metric,) = hpa["spec"]["metrics"]
        ext: dict[str, Any] = metric["external"]
        queue = QueueNames.for_prefix(settings.queue_prefix).send[provider]
        assert ext["metric"]["name"] == rule["name"]["as"]
        assert ext["metric"]["selector"]["matchLabels"] == {"queue": queue}
        assert re.fullmatch(pattern, queue)
        assert ext["target"]["type"] == "AverageValue"
        assert float(ext["target"]["averageValue"]) >= 2 * settings.sender_prefetch


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_rabbitmq_cluster(overlay: str, settings_from_env: SettingsFromEnv) -> None:
    """Quorum queues, pause_minority, Prometheus plugin; production: 3 replicas spread over
    nodes and a PDB that keeps the quorum."""
    docs = manifests.build(overlay)
    cluster = manifests.one(docs, "RabbitmqCluster", "pushfan-rabbitmq")
    spec = cluster["spec"]
    config = spec["rabbitmq"]["additionalConfig"]
    assert re.search(r"^cluster_partition_handling = pause_minority$", config, re.M)
    assert re.search(r"^default_queue_type = quorum$", config, re.M)
    assert "rabbitmq_prometheus" in spec["rabbitmq"]["additionalPlugins"]
    api = manifests.one(docs, "Deployment", "pushfan-api")
    (container,) = manifests.containers(api)
    assert settings_from_env(manifests.container_env(docs, container)).queue_type == "quorum"
    pdb = manifests.one(docs, "PodDisruptionBudget", "pushfan-rabbitmq")
    assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "pushfan-rabbitmq"}
    if overlay.startswith("production"):
        assert spec["replicas"] == 3
        assert pdb["spec"]["maxUnavailable"] == 1 < math.ceil(spec["replicas"] / 2)
        (term,) = spec["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == pdb["spec"]["selector"]["matchLabels"]


def test_secret_templates_hold_no_real_secret() -> None:
    """The Secret templates carry placeholders only."""
    templates = manifests.secret_templates()
    assert {t["metadata"]["name"] for t in templates} == {
        "pushfan-services",
        "pushfan-provider-credentials",
    }
    for template in templates:
        assert "data" not in template
        for name, value in template["stringData"].items():
            assert "CHANGE_ME" in value, name
            assert "PRIVATE KEY" not in value


def test_provider_credential_files_are_mounted_where_apps_point() -> None:
    """PUSHFAN_APPS names files of the mounted provider Secret, in the sender pods."""
    docs = manifests.build("production")
    deployment = manifests.one(docs, "Deployment", "pushfan-sender-apns")
    (container,) = manifests.containers(deployment)
    pod = manifests.pod_spec(deployment)
    assert pod is not None
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "provider-credentials"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "provider-credentials"]
    keys = manifests.secret_data(volume["secret"]["secretName"])
    settings = Settings.model_validate(
        {"apps": yaml.safe_load(manifests.container_env(docs, container)["PUSHFAN_APPS"])}
    )
    for app in settings.apps:
        for path in (app.apns_key_file, app.fcm_service_account_file, app.vapid_private_key_file):
            assert path is not None
            assert str(path.parent) == mount["mountPath"] and path.name in keys


def test_api_probe_paths_are_routes_of_the_api() -> None:
    """The API Deployment's probe paths and metrics path are routes the API serves."""
    from pushfan.api.routes import health

    paths = {getattr(route, "path", None) for route in health.router.routes}
    deployment = manifests.one(manifests.build("production"), "Deployment", "pushfan-api")
    (container,) = manifests.containers(deployment)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in paths, probe
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] in paths
