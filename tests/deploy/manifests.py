"""Load the deployment files the way the tools that apply them do, for offline tests.

`build()` renders a kustomize overlay in Python: resources (files or directories with a
kustomization), components, `namespace`, strategic-merge `patches` (maps merge, `null`
deletes, lists of named items merge by name, other lists replace) and `images`. That subset
is all k8s/ uses; `test_kustomize.py` checks it against `kubectl kustomize` where that exists.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
K8S_VERSION = "1.33.0"  # kubernetes-validate schema version the manifests target

Doc = dict[str, Any]

CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
# Secrets that exist in the cluster without being in k8s/: created by the RabbitMQ operator.
OPERATOR_SECRETS: dict[str, dict[str, str]] = {
    "pushfan-rabbitmq-default-user": {"username": "operator-user", "password": "operator-pass"},
}


def load_docs(path: Path) -> list[Doc]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def merge(base: Any, patch: Any) -> Any:
    """A strategic-merge-patch subset: see the module docstring."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        merged = [copy.deepcopy(item) for item in base]
        index = {item["name"]: i for i, item in enumerate(merged)}
        for item in patch:
            if item["name"] in index:
                merged[index[item["name"]]] = merge(merged[index[item["name"]]], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _kustomization(folder: Path) -> Doc:
    docs = load_docs(folder / "kustomization.yaml")
    assert len(docs) == 1, folder
    return docs[0]


def _accumulate(folder: Path, docs: list[Doc]) -> list[Doc]:
    """Apply one kustomization (or component) in `folder` on top of `docs`."""
    kz = _kustomization(folder)
    for entry in kz.get("resources", []):
        path = (folder / entry).resolve()
        docs = _accumulate(path, docs) if path.is_dir() else docs + load_docs(path)
    for entry in kz.get("components", []):
        docs = _accumulate((folder / entry).resolve(), docs)
    for entry in kz.get("patches", []):
        for patch in load_docs(folder / entry["path"]):
            matches = [i for i, d in enumerate(docs) if key(d) == key(patch)]
            assert len(matches) == 1, f"patch {key(patch)} in {folder} matches {len(matches)}"
            docs[matches[0]] = merge(docs[matches[0]], patch)
    if "namespace" in kz:
        docs = [_set_namespace(d, kz["namespace"]) for d in docs]
    for image in kz.get("images", []):
        docs = [_set_image(d, image) for d in docs]
    return docs


def _set_namespace(doc: Doc, namespace: str) -> Doc:
    doc = copy.deepcopy(doc)
    if doc["kind"] == "Namespace":
        doc["metadata"]["name"] = namespace
    elif doc["kind"] not in CLUSTER_SCOPED:
        doc["metadata"]["namespace"] = namespace
    return doc


def _set_image(doc: Doc, image: dict[str, str]) -> Doc:
    doc = copy.deepcopy(doc)
    for container in containers(doc):
        name = re.split(r"[:@]", container["image"], maxsplit=1)[0]
        if name == image["name"]:
            new = image.get("newName", name)
            container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new
    return doc


@cache
def _build(overlay: str) -> tuple[Doc, ...]:
    return tuple(_accumulate(K8S / "overlays" / overlay, []))


def build(overlay: str) -> list[Doc]:
    """The rendered overlay (a fresh copy each call, tests may mutate it)."""
    return copy.deepcopy(list(_build(overlay)))


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    if doc["kind"] == "CronJob":
        job_spec: Doc = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return job_spec
    return None


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    if spec is not None:
        yield from spec.get("initContainers", [])
        yield from spec.get("containers", [])


def secret_templates() -> list[Doc]:
    docs: list[Doc] = []
    for path in sorted((K8S / "secret-templates").glob("*.yaml")):
        docs += load_docs(path)
    return docs


def secret_data(name: str) -> dict[str, str]:
    """A Secret's keys: from the templates in k8s/secret-templates or made by an operator."""
    if name in OPERATOR_SECRETS:
        return OPERATOR_SECRETS[name]
    for doc in secret_templates():
        if doc["metadata"]["name"] == name:
            data: dict[str, str] = {**doc.get("data", {}), **doc.get("stringData", {})}
            return data
    raise KeyError(f"Secret {name} is neither a template nor made by an operator")


def container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """The environment a container starts with: envFrom, then env with $(VAR) expansion."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(secret_data(source["secretRef"]["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), var["value"]
            )
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secret_data(ref["name"])[ref["key"]]
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = one(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
    return env


# The `pushfan` command line, as the processes define it: a manifest or compose service that
# runs anything else is a typo. Matched against the arguments after the entrypoint.
PUSHFAN_COMMANDS = (
    r"migrate",
    r"api",
    r"worker expander",
    r"worker feedback",
    r"worker sender --provider (apns|fcm|web)",
    r"simulate (apns|fcm|webpush)( --port \d+)?( --h2c)?",
    r"demo",
)


def is_pushfan_command(args: list[str]) -> bool:
    """One of the process kinds above, and accepted by the real `pushfan` argument parsers."""
    split = [part for a in args for part in (a.split("=", 1) if a.startswith("--") else [a])]
    kept: list[str] = []
    skip = False
    for a in split:  # simulator credentials and TLS options: checked by the parser below
        if skip:
            skip = False
        elif a in _SIMULATOR_EXTRA_OPTIONS:
            skip = True
        else:
            kept.append(a)
    if not any(re.fullmatch(pattern, shlex.join(kept)) for pattern in PUSHFAN_COMMANDS):
        return False
    from pushfan.cli.main import build_parser

    try:
        parsed = build_parser().parse_args(args)
        if parsed.command == "simulate":
            from loadtest.simulators.cli import build_parser as simulator_parser

            simulator_parser().parse_args(parsed.rest)
    except SystemExit:
        return False
    return True


_SIMULATOR_EXTRA_OPTIONS = {
    "--host",
    "--cert",
    "--key",
    "--tls-dir",
    "--auth-key",
    "--account",
    "--topic",
    "--project",
    "--origin",
    "--vapid-key",
}


def crd_schemas() -> dict[tuple[str, str], Doc]:
    """(apiVersion, kind) -> the openAPIV3Schema of every CRD in k8s/crds."""
    return dict(_crd_schemas())


@cache
def _crd_schemas() -> tuple[tuple[tuple[str, str], Doc], ...]:
    out: list[tuple[tuple[str, str], Doc]] = []
    for path in sorted((K8S / "crds").glob("*.yaml")):
        for crd in load_docs(path):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                out.append(((f"{group}/{version['name']}", kind), schema))
    return tuple(out)


# Compose's `${NAME:-default}` interpolation, with nothing set: the defaults a user gets.
_INTERPOLATION = re.compile(r"\$\{[A-Z0-9_]+:-([^}]*)\}")


def _interpolate(value: Any) -> Any:
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m[1], value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags (`!override`, `!reset`) read as plain values."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!override", _plain)
_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def compose(path: Path = DEPLOY / "docker-compose.yml") -> Doc:
    """A compose file as compose reads it with no variables set."""
    with path.open() as f:
        doc = yaml.load(f, Loader=_ComposeLoader)  # a SafeLoader subclass
    return dict(_interpolate(doc))
