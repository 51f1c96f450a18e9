"""kubeconform, strict, against Kubernetes 1.32's own schemas: every built-in resource of every overlay is valid.

Strimzi's and KEDA's kinds have no schema in any package reachable here; they are named in SKIPPED, never skipped
silently, and checked field by field in test_custom_resources.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from stack.k8s_resources import OVERLAYS
from tests.k8s.tools import KUBERNETES_VERSION, standalone_strict_schemas

# The first test to run installs kustomize and kubeconform (`go install`, minutes on a fresh machine).
pytestmark = pytest.mark.timeout(1800)

SKIPPED = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "ScaledObject", "TriggerAuthentication")


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_builtin_resource_is_valid_against_the_kubernetes_schemas(rendered, kubeconform, tmp_path: Path, overlay):
    manifests = rendered[overlay]
    builtin = [m for m in manifests if m["kind"] not in SKIPPED]
    location = standalone_strict_schemas((m["apiVersion"], m["kind"]) for m in builtin)
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))

    result = subprocess.run(
        [
            str(kubeconform),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            location,
            "-skip",
            ",".join(SKIPPED),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, json.dumps(report["resources"], indent=1)
    summary = report["summary"]
    assert summary["valid"] == len(builtin)
    assert summary["skipped"] == len(manifests) - len(builtin)
    assert summary["invalid"] == summary["errors"] == 0
