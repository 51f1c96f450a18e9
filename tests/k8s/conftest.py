"""Fixtures for the manifest tests: the overlays as kustomize renders them, with the tools installed on first use;
and which service identity (jobstream/identities.py) each container's process runs as."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.k8s_resources import K8S_DIR, OVERLAYS
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


def pod_template(workload: Manifest) -> Manifest:
    """A workload's pod template; a CronJob's is its Job template's."""
    spec = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else workload["spec"]
    return spec["template"]


def pod_specs(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Every pod template's spec, by `<Kind>/<name>`."""
    return {
        f"{m['kind']}/{m['metadata']['name']}": pod_template(m)["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
    }


def containers(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest, Manifest]]:
    """Every container and init container: (`<Kind>/<name>` of its workload, its pod spec, the container)."""
    for workload, spec in pod_specs(manifests).items():
        for container in spec["containers"] + spec.get("initContainers", []):
            yield workload, spec, container


def environment(manifests: list[Manifest], workload_spec: Manifest, container: Manifest) -> dict[str, str]:
    """The container's environment, with the placeholder secrets, Strimzi's generated ones and a pod name filled in."""
    config = {
        m["metadata"]["name"]: m.get("data", {}) | m.get("stringData", {})
        for m in manifests
        if m["kind"] in ("ConfigMap", "Secret")
    }
    # The User Operator writes each KafkaUser's password into a Secret of the user's name.
    config |= {name: {"password": f"{name}-generated-by-strimzi"} for name in of_kind(manifests, "KafkaUser")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = config[ref["name"]][ref["key"]]
        else:
            assert variable["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
            env[variable["name"]] = "pod-0"
    return env


# A Jobstream process's module (`python -m <module> ...`) -> the identity it passes to Settings.from_env.
PROCESS_IDENTITIES = {
    "gateway": "gateway",
    "gateway.outbox_relay": "outbox-relay",
    "topologies.acceptance": "acceptance",
    "topologies.analytics": "analytics",
    "topologies.notifications": "notifications",
    "jobstream.topic_admin": "topic-reconciler",
    "sinks.sre.replay": "replay",
    "sinks.sre.snapshot": "replay",
    # Migrations run as the admin user, with MySQL only.
    "state.migrate": "admin",
}
# Processes of the application image that touch no store: no identity, no credentials.
STORELESS_PROCESSES = {"web", "stack.smtp", "stack.webhooks"}


def process_identity(container: Manifest) -> str | None:
    """The identity a container's command runs as; None for the store-less processes and the data servers' own."""
    command = container.get("command", [])
    if command[:2] != ["python", "-m"]:
        return None
    module, args = command[2], command[3:]
    if module == "sinks":
        return f"sink-{args[0]}"  # python -m sinks mysql|redis
    if module in STORELESS_PROCESSES:
        return None
    try:
        return PROCESS_IDENTITIES[module]
    except KeyError:
        raise AssertionError(f"{module}: which identity does it run as? Add it to PROCESS_IDENTITIES") from None
