"""Each process's KafkaUser allows what its code does with Kafka, and nothing more.

What each process reads and writes is stated below, then checked against the code two ways: the topic constants its
package imports (every topic a module names comes from schemas/topics.py), and, for the sinks, the read models'
own topic lists. Consumer groups are the settings' defaults; transactional ids and Quix's internal topics follow
from them (topologies/runtime.py; quixstreams/models/topics/manager.py names them `<type>__<group>--...`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

import schemas.topics as topics
from jobstream.settings import Settings
from sinks.mysql.models import read_models
from sinks.redis.plans import plans
from stack.k8s_topics import K8S_DIR

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
    "replay": (MYSQL_MODEL_TOPICS, set(), {"jobstream-replay"}),
}
# Exactly-once processes: their transactional.id is `<group>-<instance id>`.
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
    documents = yaml.safe_load_all((K8S_DIR / "base" / "kafka" / "users.yaml").read_text())
    return {doc["metadata"]["name"]: doc for doc in documents if doc}


def acls(user: dict[str, Any]) -> Acl:
    rules: Acl = {}
    for rule in user["spec"]["authorization"]["acls"]:
        resource = rule["resource"]
        key = (resource["type"], resource.get("name", ""), resource.get("patternType", "literal"))
        rules.setdefault(key, set()).update(rule["operations"])
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


def test_there_is_one_user_per_process_and_for_the_topic_job_and_keda():
    assert set(users()) == {*ACCESS, "topic-reconciler", "keda"}
    for user in users().values():
        assert user["spec"]["authentication"] == {"type": "tls"}
        assert user["spec"]["authorization"]["type"] == "simple"


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_each_process_reads_and_writes_exactly_its_topics(name):
    reads, writes, groups = ACCESS[name]
    rules = acls(users()[name])
    assert literal_topics(rules, "Read") == reads
    assert literal_topics(rules, "Write") == writes
    assert {n for (kind, n, _), ops in rules.items() if kind == "group" and "Read" in ops} == groups
    assert not any(kind == "cluster" for kind, _, _ in rules), "no cluster-wide rights"
    for (kind, _, _), ops in rules.items():
        if kind == "topic":
            assert "Describe" in ops


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_only_the_exactly_once_topologies_have_transactional_ids_scoped_by_their_group(name):
    _, _, groups = ACCESS[name]
    transactional = {
        (n, p, frozenset(ops)) for (kind, n, p), ops in acls(users()[name]).items() if kind == "transactionalId"
    }
    if name in EXACTLY_ONCE:
        (group,) = groups
        assert transactional == {(f"{group}-", "prefix", frozenset({"Write", "Describe"}))}
    else:
        assert transactional == set()


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_only_stateful_topologies_may_create_topics_and_only_their_quix_internal_ones(name):
    rules = acls(users()[name])
    creatable = {(n, p) for (kind, n, p), ops in rules.items() if kind == "topic" and "Create" in ops}
    if name in STATEFUL:
        group = sorted(ACCESS[name][2])[0]
        assert creatable == {(f"changelog__{group}--", "prefix"), (f"repartition__{group}--", "prefix")}
    else:
        assert creatable == set()


@pytest.mark.parametrize("processes", sorted(PACKAGES))
def test_the_topics_allowed_are_the_topics_the_code_names(processes):
    allowed = set().union(*(ACCESS[p][0] | ACCESS[p][1] for p in processes))
    assert allowed == imported_topics(PACKAGES[processes])


def test_the_sinks_topics_are_their_read_models_topics():
    assert ACCESS["sink-mysql"][0] == MYSQL_MODEL_TOPICS == ACCESS["replay"][0]
    assert ACCESS["sink-redis"][0] == set(plans())


def test_every_catalog_topic_has_a_writer_and_the_reconciler_manages_exactly_the_catalog():
    catalog = {spec.name for spec in topics.topic_catalog(1)}
    written = set().union(*(writes for _, writes, _ in ACCESS.values()))
    assert written == catalog
    reconciler = acls(users()["topic-reconciler"])
    assert literal_topics(reconciler, "Create") == literal_topics(reconciler, "AlterConfigs") == catalog


def test_keda_may_only_describe_the_groups_it_scales_on_and_their_topics():
    rules = acls(users()["keda"])
    assert {ops for ops in map(frozenset, rules.values())} == {frozenset({"Describe"})}
    scaled = {"acceptance", "analytics", "notifications", "sink-mysql", "sink-redis"}
    assert {n for (kind, n, _) in rules if kind == "group"} == set().union(*(ACCESS[p][2] for p in scaled))
    assert literal_topics(rules, "Describe") == set().union(*(ACCESS[p][0] for p in scaled))
