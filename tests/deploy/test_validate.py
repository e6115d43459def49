"""Every manifest is valid for the Kubernetes version k8s/ targets, offline.

Built-in kinds go through kubernetes-validate's strict schemas (unknown fields rejected);
custom resources through the CRDs in k8s/crds, made strict the way the API server's
`--validate=strict` is: an object that lists its properties accepts no others.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy import manifests
from tests.deploy.manifests import Doc

STANDALONE = [
    *sorted((manifests.K8S / "secret-templates").glob("*.yaml")),
    *sorted((manifests.K8S / "prometheus-adapter").glob("adapter-config.yaml")),
]


def strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever properties are listed."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate(doc: Doc) -> None:
    schemas = manifests.crd_schemas()
    api = (doc["apiVersion"], doc["kind"])
    if api in schemas:
        schema = copy.deepcopy(strict(schemas[api]))
        # The API server checks metadata itself; the CRD schemas leave it open.
        schema.setdefault("properties", {})["metadata"] = {"type": "object"}
        jsonschema.Draft7Validator(schema).validate(doc)
    else:
        kubernetes_validate.validate(doc, manifests.K8S_VERSION, strict=True)


def _cases() -> list[Any]:
    cases = []
    for overlay in manifests.OVERLAYS:
        for doc in manifests.build(overlay):
            kind, name = manifests.key(doc)
            cases.append(pytest.param(doc, id=f"{overlay}:{kind}/{name}"))
    for path in STANDALONE:
        for doc in manifests.load_docs(path):
            cases.append(pytest.param(doc, id=f"{path.parent.name}/{path.name}"))
    return cases


@pytest.mark.parametrize("doc", _cases())
def test_manifest_is_valid(doc: Doc) -> None:
    """Each rendered object validates against its built-in or custom schema."""
    validate(doc)


def test_target_version_is_supported() -> None:
    """kubernetes-validate ships the schemas of the version the manifests target."""
    assert manifests.K8S_VERSION in kubernetes_validate.utils.all_versions()


def test_strict_schema_rejects_a_typo() -> None:
    """A misspelt field in a custom resource fails validation (the strictness works)."""
    so = copy.deepcopy(manifests.find(manifests.build("production"), "ScaledObject")[0])
    so["spec"]["maxReplicaCont"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate(so)
    deployment = manifests.one(manifests.build("production"), "Deployment", "pushfan-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


def test_crds_are_the_shared_ones_unchanged() -> None:
    """k8s/crds holds the upstream CRDs byte for byte (when the shared folder is present)."""
    shared = Path("/work/shared/crds")
    if not shared.is_dir():
        pytest.skip("no shared CRD folder on this machine")
    for path in shared.iterdir():
        assert (manifests.K8S / "crds" / path.name).read_bytes() == path.read_bytes()
