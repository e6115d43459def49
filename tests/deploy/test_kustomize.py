"""The Python kustomize loader renders the overlays exactly as `kubectl kustomize` does."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.deploy import manifests


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
def test_loader_matches_kubectl_kustomize(overlay: str) -> None:
    """Given kubectl (kustomize built in), the loader's output equals its rendering."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the loader is checked where it is")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(manifests.K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    expected = sorted((d for d in yaml.safe_load_all(rendered) if d), key=manifests.key)
    assert sorted(manifests.build(overlay), key=manifests.key) == expected


def test_there_are_overlays_for_both_autoscalers() -> None:
    """One overlay scales the senders with KEDA, another with the HPA on an External metric."""
    kinds = {o: {d["kind"] for d in manifests.build(o)} for o in manifests.OVERLAYS}
    assert any("ScaledObject" in k for k in kinds.values())
    assert any("ScaledObject" not in k and "HorizontalPodAutoscaler" in k for k in kinds.values())
