"""Each process's Kafka rights in the identity catalog (jobstream/identities.py) are what its code does with Kafka,
and nothing more; k8s/base/kafka/users.yaml is exactly the catalog, as `python -m stack.k8s_resources` writes it.

What each process reads and writes is stated below, then checked against the code two ways: the topic constants its
package imports (every topic a module names comes from schemas/topics.py), and, for the sinks, the read models'
own topic lists. Consumer groups are the settings' defaults; transactional ids and Quix's internal topics follow
from them (topologies/runtime.py; quixstreams/models/topics/manager.py names them `<type>__<group>--...`). The
catalog must then allow exactly that, and the committed KafkaUsers must be the catalog's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

import schemas.topics as topics
from jobstream.identities import IDENTITIES, Identity
from jobstream.settings import Settings
from sinks.mysql.models import read_models
from sinks.redis.plans import plans
from stack.k8s_resources import KAFKA_CLUSTER, acl_rule, kafka_identities, main, render_users, users_path

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings.from_env({})
MYSQL_MODEL_TOPICS = {topic for model in read_models().values() for topic in model.topics}

# user: (topics read, topics written, consumer groups)
ACCESS: dict[str, tuple[set[str], set[str], set[str]]] = {
    "gateway": (
        set(),
        {topics.APPLICATION_CREATED, topics.APPLICATION_STAGE_CHANGED, topics.JOB_LIFECYCLE, topics.JOB_VIEWED},
        set(),
    ),
    "outbox-relay": (set(), {topics.USER_REGISTERED}, set()),
    "acceptance": (
        {topics.JOB_LIFECYCLE, topics.APPLICATION_CREATED, topics.APPLICATION_STAGE_CHANGED},
        {topics.APPLICATION_DECIDED, topics.NOTIFICATION_REQUESTED, topics.DEAD_LETTER},
        {SETTINGS.acceptance.consumer_group},
    ),
    "analytics": (
        {topics.APPLICATION_DECIDED, topics.JOB_VIEWED, topics.JOB_LIFECYCLE},
        {topics.ANALYTICS_JOB_MINUTE, topics.ANALYTICS_COMPANY_HOUR, topics.DEAD_LETTER},
        {SETTINGS.analytics.topology.consumer_group},
    ),
    "notifications": (
        {topics.NOTIFICATION_REQUESTED, topics.USER_REGISTERED, topics.NOTIFICATION_RETRY},
        {topics.NOTIFICATION_RETRY, topics.NOTIFICATION_OUTCOME, topics.NOTIFICATION_DEAD_LETTER, topics.DEAD_LETTER},
        {SETTINGS.notifications.topology.consumer_group, f"{SETTINGS.notifications.topology.consumer_group}.retry"},
    ),
    "sink-mysql": (MYSQL_MODEL_TOPICS, {topics.DEAD_LETTER}, {SETTINGS.sinks.mysql_group}),
    "sink-redis": (set(plans()), {topics.DEAD_LETTER}, {SETTINGS.sinks.redis_group}),
    "replay": (
        MYSQL_MODEL_TOPICS | {topics.READ_MODEL_SNAPSHOT},
        {topics.READ_MODEL_SNAPSHOT},
        {"jobstream-replay"},
    ),
}
# Exactly-once processes: their transactional.id is `<group>-<instance id or a random hex>` (topologies/runtime.py).
EXACTLY_ONCE = {"acceptance", "analytics"}
# Stateful Quix applications, which create their changelog (and repartition) topics.
STATEFUL = {"acceptance", "analytics", "notifications"}
# Each process's source, whose imported topic constants must be the topics its users may touch.
PACKAGES = {
    ("gateway", "outbox-relay"): ["gateway"],
    ("acceptance",): ["topologies/acceptance", "topologies/runtime.py"],
    ("analytics",): ["topologies/analytics", "topologies/runtime.py"],
    ("notifications",): ["topologies/notifications"],
}

Acl = dict[tuple[str, str, str], set[str]]


def users() -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all(users_path().read_text())
    return {doc["metadata"]["name"]: doc for doc in documents if doc}


def acls(identity: Identity) -> Acl:
    """The catalog's ACLs of one identity, by (resource type, name, pattern)."""
    rules: Acl = {}
    for acl in identity.kafka:
        rules.setdefault((acl.resource, acl.name, acl.pattern), set()).update(acl.operations)
    return rules


def literal_topics(rules: Acl, operation: str) -> set[str]:
    return {
        name
        for (kind, name, pattern), ops in rules.items()
        if kind == "topic" and pattern == "literal" and operation in ops
    }


def imported_topics(paths: Iterable[str]) -> set[str]:
    """The values of the schemas.topics name constants imported anywhere under `paths`."""
    names: set[str] = set()
    for path in paths:
        files = [ROOT / path] if path.endswith(".py") else sorted((ROOT / path).rglob("*.py"))
        for file in files:
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "schemas.topics":
                    names.update(alias.name for alias in node.names)
    return {getattr(topics, name) for name in names if isinstance(getattr(topics, name), str) and name.isupper()}


def test_the_committed_users_file_is_what_the_catalog_generates():
    assert users_path().read_text() == render_users(), "run `python -m stack.k8s_resources`"
    assert main(["--check"]) == 0


def test_there_is_one_scram_user_per_identity_but_the_local_superuser():
    assert [identity.name for identity in kafka_identities()] == [
        name for name, identity in IDENTITIES.items() if not identity.superuser
    ]
    assert list(users()) == [identity.name for identity in kafka_identities()]
    assert set(users()) == {*ACCESS, "topic-reconciler", "keda"}
    for user in users().values():
        assert user["apiVersion"] == "kafka.strimzi.io/v1beta2" and user["kind"] == "KafkaUser"
        assert user["metadata"]["labels"] == {"strimzi.io/cluster": KAFKA_CLUSTER}
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"


@pytest.mark.parametrize("name", [identity.name for identity in kafka_identities()])
def test_each_kafka_user_has_the_catalogs_acls_in_its_order_under_its_purpose(name):
    identity = IDENTITIES[name]
    rules = users()[name]["spec"]["authorization"]["acls"]
    assert rules == [acl_rule(acl) for acl in identity.kafka]
    for rule in rules:
        assert set(rule) == {"resource", "operations"}, "allow rules on any host, the Strimzi defaults"
        assert rule["resource"]["patternType"] in ("literal", "prefix")
    text = users_path().read_text()
    document = next(doc for doc in text.split("\n---\n") if f"\n  name: {name}\n" in doc)
    comment = " ".join(line[2:] for line in document.splitlines() if line.startswith("# "))
    assert comment == f"{name}: {identity.purpose}"


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_each_process_reads_and_writes_exactly_its_topics(name):
    reads, writes, groups = ACCESS[name]
    identity = IDENTITIES[name]
    rules = acls(identity)
    assert identity.kafka_topics("Read") == literal_topics(rules, "Read") == reads
    assert identity.kafka_topics("Write") == literal_topics(rules, "Write") == writes
    # Group ACLs are namespaces: each one a group the code joins, and every group the code joins inside one.
    namespaces = identity.kafka_groups()
    assert namespaces <= groups
    assert all(any(group.startswith(namespace) for namespace in namespaces) for group in groups)
    assert {pattern for (kind, _, pattern) in rules if kind == "group"} <= {"prefix"}
    assert not any(kind == "cluster" for kind, _, _ in rules), "no cluster-wide rights"
    for (kind, _, _), ops in rules.items():
        if kind == "topic":
            assert "Describe" in ops


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_only_the_exactly_once_topologies_have_transactional_ids_scoped_by_their_group(name):
    _, _, groups = ACCESS[name]
    transactional = {
        (n, p, frozenset(ops)) for (kind, n, p), ops in acls(IDENTITIES[name]).items() if kind == "transactionalId"
    }
    if name in EXACTLY_ONCE:
        (group,) = groups
        assert transactional == {(group, "prefix", frozenset({"Write", "Describe"}))}
    else:
        assert transactional == set()


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_only_stateful_topologies_may_create_topics_and_only_their_quix_internal_ones(name):
    rules = acls(IDENTITIES[name])
    creatable = {(n, p) for (kind, n, p), ops in rules.items() if kind == "topic" and "Create" in ops}
    if name in STATEFUL:
        (group,) = IDENTITIES[name].kafka_groups()
        assert creatable == {(f"changelog__{group}", "prefix"), (f"repartition__{group}", "prefix")}
    else:
        assert creatable == set()


@pytest.mark.parametrize("processes", sorted(PACKAGES))
def test_the_topics_allowed_are_the_topics_the_code_names(processes):
    allowed = set().union(*(ACCESS[p][0] | ACCESS[p][1] for p in processes))
    assert allowed == imported_topics(PACKAGES[processes])


def test_the_sinks_topics_are_their_read_models_topics():
    assert ACCESS["sink-mysql"][0] == MYSQL_MODEL_TOPICS == ACCESS["replay"][0] - {topics.READ_MODEL_SNAPSHOT}
    assert ACCESS["sink-redis"][0] == set(plans())


def test_every_catalog_topic_has_a_writer_and_the_reconciler_manages_exactly_the_catalog():
    catalog = {spec.name for spec in topics.topic_catalog(1)}
    written = set().union(*(writes for _, writes, _ in ACCESS.values()))
    assert written == catalog
    reconciler = acls(IDENTITIES["topic-reconciler"])
    assert literal_topics(reconciler, "Create") == literal_topics(reconciler, "AlterConfigs") == catalog
    assert {kind for kind, _, _ in reconciler} == {"topic"}


def test_keda_may_only_describe_the_groups_it_scales_on_and_their_topics():
    rules = acls(IDENTITIES["keda"])
    assert {ops for ops in map(frozenset, rules.values())} == {frozenset({"Describe"})}
    scaled = {"acceptance", "analytics", "notifications", "sink-mysql", "sink-redis"}
    assert {n for (kind, n, _) in rules if kind == "group"} == set().union(*(ACCESS[p][2] for p in scaled))
    assert literal_topics(rules, "Describe") == set().union(*(ACCESS[p][0] for p in scaled))
