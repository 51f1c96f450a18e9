"""Fixtures for the manifest tests: the overlays as kustomize renders them, with the tools installed on first use."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.k8s_topics import K8S_DIR, OVERLAYS
from tests.k8s.tools import ToolError, ensure_tool

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def kustomize() -> Path:
    try:
        return ensure_tool("kustomize")
    except ToolError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def kubeconform() -> Path:
    try:
        return ensure_tool("kubeconform")
    except ToolError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> dict[str, list[Manifest]]:
    """Each overlay's manifests, as `kustomize build k8s/overlays/<overlay>` prints them."""
    return {overlay: render(kustomize, overlay) for overlay in OVERLAYS}


def render(kustomize: Path, overlay: str) -> list[Manifest]:
    result = subprocess.run(
        [str(kustomize), "build", str(K8S_DIR / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        pytest.fail(f"kustomize build k8s/overlays/{overlay} failed:\n{result.stderr}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The manifests of one kind, by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Every pod template's spec, by `<Kind>/<name>`."""
    return {
        f"{m['kind']}/{m['metadata']['name']}": m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet", "Job")
    }
