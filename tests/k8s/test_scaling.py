"""KEDA scales each stream stage on its own consumer group's lag, never past the partitions that group reads."""

from __future__ import annotations

import pytest

from schemas.topics import topic_catalog
from stack.k8s_resources import OVERLAYS
from tests.k8s.conftest import of_kind
from tests.k8s.test_kafka_users import ACCESS

# The first test to run installs kustomize and kubeconform (`go install`, minutes on a fresh machine).
pytestmark = pytest.mark.timeout(1800)

# ScaledObject (= its workload) -> the KafkaUser whose reads and groups it scales on.
SCALED = {
    "acceptance": ("StatefulSet", "acceptance"),
    "analytics": ("StatefulSet", "analytics"),
    "notifications-fresh": ("Deployment", "notifications"),
    "notifications-retry": ("Deployment", "notifications"),
    "sink-mysql": ("Deployment", "sink-mysql"),
    "sink-redis": ("Deployment", "sink-redis"),
}
GROUPS = {
    "notifications-fresh": "notifications",
    "notifications-retry": "notifications.retry",
}
PARTITIONS = {spec.name: spec.partitions for spec in topic_catalog(1)}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_stream_stage_scales_on_its_groups_lag_up_to_its_partitions(rendered, overlay):
    manifests = rendered[overlay]
    scaled = of_kind(manifests, "ScaledObject")
    assert set(scaled) == set(SCALED)
    for name, (kind, user) in SCALED.items():
        spec = scaled[name]["spec"]
        reads, _, groups = ACCESS[user]
        (group,) = [GROUPS[name]] if name in GROUPS else groups
        (trigger,) = spec["triggers"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": kind, "name": name}
        assert name in of_kind(manifests, kind)
        assert "replicas" not in of_kind(manifests, kind)[name]["spec"], "KEDA owns the replica count"
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == group
        ceiling = min(PARTITIONS[topic] for topic in reads)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= ceiling == 6, name


def test_prod_keeps_two_of_every_stage_and_scales_to_the_partition_count(rendered):
    for spec in (m["spec"] for m in of_kind(rendered["prod"], "ScaledObject").values()):
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 6)
