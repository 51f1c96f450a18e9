"""Strimzi's and KEDA's resources, which no schema here covers, checked for the fields their operators require.

The required fields are those of Strimzi's v1beta2 CRDs (Kafka, KafkaNodePool, KafkaTopic, KafkaUser) and KEDA's
v1alpha1 CRDs (ScaledObject, TriggerAuthentication), plus what KRaft with node pools needs; the checks read like
those CRDs' `required` lists and enums, and every cross-reference (cluster label, Secret, authentication) resolves.
"""

from __future__ import annotations

import re

import pytest

from stack.k8s_resources import KAFKA_CLUSTER, OVERLAYS
from tests.k8s.conftest import of_kind

# The first test to run installs kustomize and kubeconform (`go install`, minutes on a fresh machine).
pytestmark = pytest.mark.timeout(1800)

STRIMZI = "kafka.strimzi.io/v1beta2"
KEDA = "keda.sh/v1alpha1"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ACL_RESOURCES = {"topic", "group", "cluster", "transactionalId"}
ACL_OPERATIONS = {
    "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs", "DescribeConfigs",
    "IdempotentWrite", "All",
}  # fmt: skip


def _secret_value(manifests, name: str, key: str) -> str:
    (secret,) = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == name]
    return secret["stringData"][key]


def _in_cluster(resource) -> None:
    assert resource["apiVersion"] == STRIMZI
    assert resource["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA_CLUSTER
    assert DNS_SUBDOMAIN.match(resource["metadata"]["name"])


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_kafka_cluster_runs_kraft_on_node_pools_with_scram_clients_over_tls_and_acls(rendered, overlay):
    (kafka,) = of_kind(rendered[overlay], "Kafka").values()
    assert kafka["apiVersion"] == STRIMZI and kafka["metadata"]["name"] == KAFKA_CLUSTER
    annotations = kafka["metadata"]["annotations"]
    assert annotations == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    spec = kafka["spec"]
    assert "zookeeper" not in spec and "replicas" not in spec["kafka"] and "storage" not in spec["kafka"]
    assert spec["kafka"]["version"] == "4.1.1"
    (listener,) = spec["kafka"]["listeners"]
    assert {"name", "port", "type", "tls"} <= set(listener)
    assert listener["type"] in ("internal", "cluster-ip") and listener["tls"] is True and listener["port"] == 9093
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert spec["kafka"]["authorization"] == {"type": "simple"}
    assert {"topicOperator", "userOperator"} <= set(spec["entityOperator"])


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_node_pools_have_a_controller_quorum_and_brokers_with_persistent_storage(rendered, overlay):
    pools = of_kind(rendered[overlay], "KafkaNodePool")
    roles = {}
    for pool in pools.values():
        _in_cluster(pool)
        spec = pool["spec"]
        assert {"replicas", "roles", "storage"} <= set(spec)
        assert isinstance(spec["replicas"], int) and spec["replicas"] >= 1
        assert set(spec["roles"]) <= {"controller", "broker"}
        (volume,) = spec["storage"]["volumes"]
        assert spec["storage"]["type"] == "jbod" and volume["type"] == "persistent-claim" and volume["size"]
        assert volume["deleteClaim"] is False
        for role in spec["roles"]:
            roles[role] = roles.get(role, 0) + spec["replicas"]
    assert roles["controller"] % 2 == 1, "a KRaft quorum has an odd number of voters"
    assert roles["broker"] >= 1


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_topics_and_users_name_the_cluster_and_have_their_required_fields(rendered, overlay):
    for topic in of_kind(rendered[overlay], "KafkaTopic").values():
        _in_cluster(topic)
        assert isinstance(topic["spec"]["partitions"], int) and isinstance(topic["spec"]["replicas"], int)
        assert all(isinstance(value, str) for value in topic["spec"]["config"].values())
    for user in of_kind(rendered[overlay], "KafkaUser").values():
        _in_cluster(user)
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}, "the listener's mechanism"
        for rule in user["spec"]["authorization"]["acls"]:
            resource = rule["resource"]
            assert resource["type"] in ACL_RESOURCES
            assert resource["type"] == "cluster" or resource["name"]
            assert resource.get("patternType", "literal") in ("literal", "prefix")
            assert rule["operations"] and set(rule["operations"]) <= ACL_OPERATIONS


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_scaled_objects_use_the_kafka_trigger_with_an_authentication_that_resolves(rendered, overlay):
    manifests = rendered[overlay]
    authentications = of_kind(manifests, "TriggerAuthentication")
    secrets = set(of_kind(manifests, "Secret"))
    # Secrets the Strimzi operators write: one per KafkaUser, and the cluster CA's certificate.
    strimzi_secrets = set(of_kind(manifests, "KafkaUser")) | {f"{KAFKA_CLUSTER}-cluster-ca-cert"}
    for authentication in authentications.values():
        assert authentication["apiVersion"] == KEDA
        for ref in authentication["spec"]["secretTargetRef"]:
            assert {"parameter", "name", "key"} <= set(ref)
            assert ref["name"] in secrets | strimzi_secrets, ref
        # KEDA's kafka scaler: SASL/SCRAM-SHA-512 as the KafkaUser keda, over TLS against the cluster CA.
        refs = {ref["parameter"]: (ref["name"], ref["key"]) for ref in authentication["spec"]["secretTargetRef"]}
        assert set(refs) == {"sasl", "username", "password", "tls", "ca"}
        assert refs["password"] == ("keda", "password"), "the User Operator's Secret of the KafkaUser keda"
        assert refs["ca"] == (f"{KAFKA_CLUSTER}-cluster-ca-cert", "ca.crt")
        values = {parameter: _secret_value(manifests, *refs[parameter]) for parameter in ("sasl", "username", "tls")}
        assert values == {"sasl": "scram_sha512", "username": "keda", "tls": "enable"}
        assert values["username"] in of_kind(manifests, "KafkaUser")
    for scaled in of_kind(manifests, "ScaledObject").values():
        assert scaled["apiVersion"] == KEDA
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            metadata = trigger["metadata"]
            assert {"bootstrapServers", "consumerGroup", "lagThreshold"} <= set(metadata)
            assert all(isinstance(value, str) for value in metadata.values()), "KEDA metadata values are strings"
            assert metadata["lagThreshold"].isdigit()
            assert metadata["bootstrapServers"] == f"{KAFKA_CLUSTER}-kafka-bootstrap.jobstream.svc:9093"
            assert trigger["authenticationRef"]["name"] in authentications
