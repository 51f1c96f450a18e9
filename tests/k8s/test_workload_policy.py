"""Every rendered workload is bounded, probed, pinned and unprivileged, and configured only with real settings.

Probes: the gateway and web serve HTTP (readiness /readyz and liveness /healthz for the gateway, /config.json for
web); the topologies, sinks and the outbox relay serve no HTTP API, only Prometheus metrics, so their liveness probe
is /metrics on that port; the dev overlay's capture sidecars are probed on their TCP ports. Jobs end, so they have
none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from jobstream.settings import Settings
from stack.k8s_resources import OVERLAYS
from tests.k8s.conftest import containers, environment, of_kind, process_identity

# The first test to run installs kustomize and kubeconform (`go install`, minutes on a fresh machine).
pytestmark = pytest.mark.timeout(1800)

APP_IMAGE = "registry.example.com/jobstream:0.1.0"
# The data servers' own images; the migrate Job's mariadb-users step runs the server image's client.
SERVER_IMAGES = {
    "mariadb": "docker.io/library/mariadb:10.11.10",
    "mariadb-users": "docker.io/library/mariadb:10.11.10",
    "redis": "docker.io/library/redis:7.0.15",
}
HTTP_PROBES = {"gateway": ("/readyz", "/healthz"), "web": ("/config.json", "/config.json")}
METRICS_ONLY = {
    "acceptance",
    "analytics",
    "notifications-fresh",
    "notifications-retry",
    "sink-mysql",
    "sink-redis",
    "outbox-relay",
}


class _Recording(dict[str, str]):
    """An environment that remembers every variable the settings asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_container_has_requests_and_limits_for_cpu_and_memory(rendered, overlay):
    for workload, _, container in containers(rendered[overlay]):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert set(resources.get(bound, {})) >= {"cpu", "memory"}, f"{workload}/{container['name']}: {bound}"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_image_is_pinned_to_an_exact_tag_or_digest(rendered, overlay):
    for workload, _, container in containers(rendered[overlay]):
        image = container["image"]
        name, _, tag = image.rpartition(":")
        assert "@sha256:" in image or (name and "/" not in tag and tag not in ("", "latest")), f"{workload}: {image}"
        assert image == SERVER_IMAGES.get(container["name"], APP_IMAGE), workload


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_container_runs_unprivileged_non_root_on_a_read_only_root(rendered, overlay):
    for workload, spec, container in containers(rendered[overlay]):
        pod, own = spec.get("securityContext", {}), container.get("securityContext", {})
        where = f"{workload}/{container['name']}"
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
        assert own.get("runAsUser", pod.get("runAsUser", 0)) != 0, where
        assert own.get("seccompProfile", pod.get("seccompProfile")) == {"type": "RuntimeDefault"}, where
        assert own.get("allowPrivilegeEscalation") is False, where
        assert own.get("readOnlyRootFilesystem") is True, where
        assert own.get("capabilities") == {"drop": ["ALL"]}, where
        assert spec.get("automountServiceAccountToken") is False, where


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_long_running_container_is_probed_as_it_can_be(rendered, overlay):
    for workload, _, container in containers(rendered[overlay]):
        name = container["name"]
        if workload.startswith(("Job/", "CronJob/")):
            assert "livenessProbe" not in container, workload
            continue
        liveness = container["livenessProbe"]
        if name in HTTP_PROBES:
            ready, live = HTTP_PROBES[name]
            assert container["readinessProbe"]["httpGet"]["path"] == ready
            assert liveness["httpGet"]["path"] == live
        elif name in METRICS_ONLY:
            assert liveness["httpGet"] == {"path": "/metrics", "port": "metrics"}
        else:
            assert "exec" in liveness or "tcpSocket" in liveness, f"{workload}/{name}"
        ports = {port["name"] for port in container.get("ports", [])}
        probe = liveness.get("httpGet") or liveness.get("tcpSocket")
        if probe is not None:
            assert probe["port"] in ports, f"{workload}/{name} probes a port it does not declare"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_jobstream_variable_exists_and_the_settings_accept_every_containers_environment(rendered, overlay):
    known = _Recording({})
    Settings.from_env(known)
    for workload, spec, container in containers(rendered[overlay]):
        if container["name"] in SERVER_IMAGES:
            continue
        env = environment(rendered[overlay], spec, container)
        unknown = {name for name in env if name.startswith("JOBSTREAM_")} - known.asked
        assert not unknown, f"{workload}: not settings of jobstream/settings.py: {unknown}"
        # As the process runs: with its identity, so production demands that identity's credentials. A bad value
        # raises SettingsError naming it.
        Settings.from_env(env, identity=process_identity(container) or "admin")


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_topologies_are_statefulsets_named_by_pod_with_state_on_their_own_volume(rendered, overlay):
    sets = of_kind(rendered[overlay], "StatefulSet")
    for name, prefix in (("acceptance", "ACCEPTANCE"), ("analytics", "ANALYTICS")):
        spec = sets[name]["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        env = {variable["name"]: variable for variable in container["env"]}
        assert env[f"JOBSTREAM_{prefix}_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        state_dir = env[f"JOBSTREAM_{prefix}_STATE_DIR"]["value"]
        assert {"name": "state", "mountPath": state_dir} in container["volumeMounts"]
        assert [claim["metadata"]["name"] for claim in spec["volumeClaimTemplates"]] == ["state"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_one_workload_per_procfile_process_and_the_jobs(rendered, overlay):
    deployments = set(of_kind(rendered[overlay], "Deployment"))
    assert deployments == {
        "gateway",
        "web",
        "outbox-relay",
        "notifications-fresh",
        "notifications-retry",
        "sink-mysql",
        "sink-redis",
    }
    assert set(of_kind(rendered[overlay], "StatefulSet")) == {
        "acceptance",
        "analytics",
        "mariadb",
        "mariadb-replica",
        "redis",
    }
    assert set(of_kind(rendered[overlay], "Job")) == {"migrate", "topics", "replay"}
    assert set(of_kind(rendered[overlay], "CronJob")) == {"snapshot"}
    sidecars = {
        c["name"]
        for c in of_kind(rendered[overlay], "Deployment")["notifications-fresh"]["spec"]["template"]["spec"][
            "containers"
        ]
    }
    # The Procfile's smtp and webhooks capture servers bind 127.0.0.1: dev runs them beside the stages; prod has none.
    assert sidecars == ({"notifications-fresh", "smtp", "webhooks"} if overlay == "dev" else {"notifications-fresh"})


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_gateway_scales_on_cpu_keeps_a_replica_through_drains_and_only_it_and_web_are_exposed(rendered, overlay):
    manifests = rendered[overlay]
    hpa = of_kind(manifests, "HorizontalPodAutoscaler")["gateway"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert set(of_kind(manifests, "PodDisruptionBudget")) == {"gateway", "web"}
    backends = {
        path["backend"]["service"]["name"]
        for ingress in of_kind(manifests, "Ingress").values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway", "web"}
    policies = of_kind(manifests, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    }
    from_ingress = {
        policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for policy in policies.values()
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "ingress-nginx"
    }
    assert from_ingress == {"gateway", "web"}
