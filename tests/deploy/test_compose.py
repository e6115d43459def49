"""deploy/docker-compose.yml and its Prometheus/Grafana files agree with pushfan.

No Docker engine here: the compose file is read as data and checked against the `pushfan`
argument parsers, Settings, the simulators' credential parsers and the scrape config.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loadtest.simulators.apns_auth import AuthKey
from loadtest.simulators.cli import build_parser as simulator_parser
from loadtest.simulators.oauth import ServiceAccount
from pushfan.cli.main import build_parser
from pushfan.settings import Settings
from tests.deploy import manifests
from tests.fixtures.deploy import SettingsFromEnv

DEPLOY = manifests.DEPLOY
IN_CONTAINER = Path("/var/lib/pushfan/credentials")
INFRA = {"rabbitmq", "redis", "postgres", "prometheus", "grafana"}
ONE_SHOT_SCRIPTS = {"credentials"}  # services that run a script from deploy/ instead


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return manifests.compose()


def pushfan_services(stack: dict[str, Any]) -> dict[str, Any]:
    return {
        n: s for n, s in stack["services"].items() if n not in INFRA and n not in ONE_SHOT_SCRIPTS
    }


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def simulator_args(service: dict[str, Any]) -> Any:
    parsed = build_parser().parse_args(service["command"])
    return simulator_parser().parse_args(parsed.rest)


def test_services_are_the_whole_stack(stack: dict[str, Any]) -> None:
    """Broker, Redis, PostgreSQL, migrations, API, expander, the invalid-token webhook worker,
    the three senders, the three simulators, Prometheus and Grafana are all there."""
    assert set(stack["services"]) == INFRA | ONE_SHOT_SCRIPTS | {
        "migrate",
        "api",
        "expander",
        "feedback",
        "sender-apns",
        "sender-fcm",
        "sender-web",
        "sim-apns",
        "sim-fcm",
        "sim-web",
    }


def test_every_service_command_is_a_pushfan_subcommand(stack: dict[str, Any]) -> None:
    """Services built from the image run `pushfan <a real subcommand>` (the entrypoint)."""
    for name, service in pushfan_services(stack).items():
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert "entrypoint" not in service, name
        assert manifests.is_pushfan_command(service["command"]), (name, service["command"])
    kinds = {" ".join(s["command"][:2]) for s in pushfan_services(stack).values()}
    assert {"migrate", "api", "worker expander", "worker sender", "simulate apns"} <= kinds


def test_one_shot_credentials_service_runs_the_script_it_mounts(stack: dict[str, Any]) -> None:
    """The credentials service runs deploy/compose/dev_credentials.py, mounted read-only."""
    service = stack["services"]["credentials"]
    script = service["entrypoint"][1]
    mounts = dict(v.rsplit(":", 2)[:2][::-1] for v in service["volumes"] if v.startswith("./"))
    assert (DEPLOY / mounts[script]).resolve() == DEPLOY / "compose" / "dev_credentials.py"
    assert service["entrypoint"][2] == str(IN_CONTAINER)


def test_every_environment_builds_settings(
    stack: dict[str, Any], settings_from_env: SettingsFromEnv
) -> None:
    """Each pushfan service's environment is valid Settings (names, types, apps JSON)."""
    fields = set(Settings.model_fields)
    for name, service in pushfan_services(stack).items():
        env = service["environment"]
        for var in env:
            assert var.removeprefix("PUSHFAN_").lower() in fields, (name, var)
        settings_from_env(env)


def test_ports_agree_with_settings_and_scrape_config(
    stack: dict[str, Any], settings_from_env: SettingsFromEnv
) -> None:
    """API on PUSHFAN_API_PORT, workers' metrics on PUSHFAN_METRICS_PORT, and Prometheus
    scrapes exactly those service:port pairs; the simulators listen where the senders call."""
    services = stack["services"]
    scrape = manifests.load_docs(DEPLOY / "prometheus" / "prometheus.yml")[0]["scrape_configs"]
    targets: dict[str, int] = {}
    for job in scrape:
        for sd in job.get("dns_sd_configs", []):
            for host in sd["names"]:
                targets[host] = sd["port"]
    api = settings_from_env(services["api"]["environment"])
    assert api.cookies_secure, "the dashboard's cookies are Secure (browsers allow it on localhost)"
    assert f"{api.api_port}:{api.api_port}" in services["api"]["ports"]
    assert api.api_host == "0.0.0.0"
    assert targets.pop("api") == api.api_port
    for worker in ("expander", "feedback", "sender-apns", "sender-fcm", "sender-web"):
        settings = settings_from_env(services[worker]["environment"])
        assert settings.metrics_port != 0
        assert settings.metrics_host == "0.0.0.0", "Prometheus scrapes from another container"
        assert targets.pop(worker) == settings.metrics_port
    assert not targets, f"scraped but not in the stack: {targets}"
    sender = settings_from_env(services["sender-apns"]["environment"])
    for provider, base in (("apns", sender.apns_base_url), ("fcm", sender.fcm_base_url)):
        url = urlsplit(base)
        args = simulator_args(services[f"sim-{provider}"])
        assert url.scheme == "https", "the provider clients always speak TLS"
        assert (url.hostname, url.port) == (f"sim-{provider}", args.port)
        assert args.host == "0.0.0.0"
    # Web endpoints come from registrations; the simulator's origin is let in as a dev host.
    web = simulator_args(services["sim-web"])
    assert sender.web_push_dev_hosts == [f"sim-web:{web.port}"]
    assert web.origin == f"https://sim-web:{web.port}" and web.host == "0.0.0.0"
    rabbit = [j for j in scrape if j["job_name"].startswith("rabbitmq")]
    for job in rabbit:
        assert job["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert "15692:15692" in services["rabbitmq"]["ports"]
    detailed = [j for j in rabbit if j["metrics_path"] == "/metrics/detailed"]
    assert "queue_coarse_metrics" in detailed[0]["params"]["family"]


def test_stop_grace_period_covers_the_drain_deadline(
    stack: dict[str, Any], settings_from_env: SettingsFromEnv
) -> None:
    """Compose waits longer than a worker's drain deadline before SIGKILL."""
    for name in ("expander", "feedback", "sender-apns", "sender-fcm", "sender-web"):
        service = stack["services"][name]
        grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
        assert grace is not None
        assert int(grace[1]) > settings_from_env(service["environment"]).drain_deadline_s


def test_dev_credentials_fit_apps_simulators_and_tls(
    stack: dict[str, Any], tmp_path: Path, settings_from_env: SettingsFromEnv
) -> None:
    """The files the credentials service writes are the ones PUSHFAN_APPS names, the
    simulators accept them, and the simulators' certificate is valid for their host names."""
    script = load_script(DEPLOY / "compose" / "dev_credentials.py")
    script.write_credentials(tmp_path)
    assert script.write_credentials(tmp_path) == []  # a restart keeps the keys

    def local(path: Path | str) -> Path:
        return tmp_path / Path(path).relative_to(IN_CONTAINER)

    services = stack["services"]
    settings = settings_from_env(services["sender-apns"]["environment"])
    (app,) = settings.apps
    apns = simulator_args(services["sim-apns"])
    fcm = simulator_args(services["sim-fcm"])

    key_id, team_id, public = apns.auth_key[0].split(":", 2)
    AuthKey.parse(f"{key_id}:{team_id}:{local(public)}")
    assert (app.apns_key_id, app.apns_team_id) == (key_id, team_id)
    assert app.apns_topic in apns.topic
    assert app.apns_key_file is not None
    private = serialization.load_pem_private_key(local(app.apns_key_file).read_bytes(), None)
    assert _same_key(private.public_key(), local(public))

    email, public = fcm.account[0].split("=", 1)
    ServiceAccount.parse(f"{email}={local(public)}")
    assert app.fcm_service_account_file is not None
    account = json.loads(local(app.fcm_service_account_file).read_text())
    assert (account["client_email"], account["project_id"]) == (email, app.fcm_project_id)
    assert app.fcm_project_id in fcm.project
    assert account["token_uri"] == settings.fcm_token_url
    assert urlsplit(account["token_uri"]).path == "/token"  # the FCM simulator's endpoint
    private = serialization.load_pem_private_key(account["private_key"].encode(), None)
    assert _same_key(private.public_key(), local(public))

    assert app.has_web and app.vapid_private_key_file is not None
    vapid = serialization.load_pem_private_key(local(app.vapid_private_key_file).read_bytes(), None)
    assert isinstance(vapid, ec.EllipticCurvePrivateKey) and vapid.curve.name == "secp256r1"

    assert settings.ca_file is not None
    ca = x509.load_pem_x509_certificate(local(settings.ca_file).read_bytes())
    web = simulator_args(services["sim-web"])
    for args in (apns, fcm, web):
        cert = x509.load_pem_x509_certificate(local(args.cert).read_bytes())
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        urls = (settings.apns_base_url, settings.fcm_base_url, web.origin)
        hosts = {urlsplit(u).hostname for u in urls}
        assert hosts <= set(names.get_values_for_type(x509.DNSName))
        key = serialization.load_pem_private_key(local(args.key).read_bytes(), None)
        assert _same_key(key.public_key(), cert.public_key())


def _same_key(public: Any, other: Path | Any) -> bool:
    if isinstance(other, Path):
        other = serialization.load_pem_public_key(other.read_bytes())
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(public.public_bytes(*fmt) == other.public_bytes(*fmt))


def test_rabbitmq_plugins_and_quorum_default() -> None:
    """The broker enables management and Prometheus, and defaults to quorum queues."""
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert re.fullmatch(r"\[[a-z_,]+\]\.\s*", plugins)
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= set(plugins.strip("[].\n").split(","))
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert re.search(r"^default_queue_type = quorum$", conf, re.M)


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus(
    stack: dict[str, Any],
) -> None:
    """The provisioned datasource uid is the dashboard's, its URL is the Prometheus service,
    and the dashboard provider reads the folder the dashboard JSON is mounted in."""
    grafana = stack["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    (ds,) = manifests.load_docs(
        DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    )[0]["datasources"]
    assert urlsplit(ds["url"]).hostname == "prometheus"
    assert "9090:9090" in stack["services"]["prometheus"]["ports"]
    (provider,) = manifests.load_docs(
        DEPLOY / "grafana" / "provisioning" / "dashboards" / "pushfan.yml"
    )[0]["providers"]
    folder = DEPLOY / mounts[provider["options"]["path"]]
    dashboard = json.loads((folder / "pushfan.json").read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} | {
        p["datasource"]["uid"] for p in dashboard["panels"]
    }
    assert uids == {ds["uid"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
