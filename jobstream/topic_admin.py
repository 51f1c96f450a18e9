"""Create or reconcile the catalog's topics on a cluster; safe to run any number of times."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from jobstream.errors import JobstreamError
from schemas.topics import TopicSpec

_TIMEOUT_S = 30.0


class TopicCatalogError(JobstreamError):
    """A topic on the cluster cannot be brought in line with the catalog automatically."""


@dataclass(frozen=True)
class TopicChange:
    topic: str
    action: str  # "created", "partitions", "config"
    detail: str


def reconcile_topics(admin: AdminClient, specs: Iterable[TopicSpec], min_insync_replicas: int) -> list[TopicChange]:
    """Create missing topics, add partitions and set configs that drifted. Returns what changed."""
    specs = list(specs)
    existing = admin.list_topics(timeout=_TIMEOUT_S).topics
    changes: list[TopicChange] = []

    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    config=spec.config(min_insync_replicas),
                )
                for spec in missing
            ],
            operation_timeout=_TIMEOUT_S,
            request_timeout=_TIMEOUT_S,
        )
        for spec in missing:
            futures[spec.name].result()
            changes.append(TopicChange(spec.name, "created", f"{spec.partitions} partitions"))
        _wait_for_leaders(admin, missing)

    present = [spec for spec in specs if spec.name in existing]
    for spec in present:
        partitions = existing[spec.name].partitions
        replicas = len(next(iter(partitions.values())).replicas)
        if replicas != spec.replication_factor:
            raise TopicCatalogError(
                f"topic {spec.name} has replication factor {replicas}, the catalog says "
                f"{spec.replication_factor}; Kafka cannot change it in place (reassign partitions by hand)"
            )
        if len(partitions) > spec.partitions:
            raise TopicCatalogError(
                f"topic {spec.name} has {len(partitions)} partitions, the catalog says {spec.partitions}; "
                "Kafka cannot remove partitions"
            )
        if len(partitions) < spec.partitions:
            admin.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name].result()
            changes.append(TopicChange(spec.name, "partitions", f"{len(partitions)} -> {spec.partitions}"))

    changes.extend(_reconcile_configs(admin, present, min_insync_replicas))
    return changes


def _wait_for_leaders(admin: AdminClient, specs: list[TopicSpec]) -> None:
    """CreateTopics returns before every broker's metadata knows the new partitions' leaders."""
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        topics = admin.list_topics(timeout=_TIMEOUT_S).topics
        ready = [
            spec.name in topics
            and len(topics[spec.name].partitions) == spec.partitions
            and all(partition.leader >= 0 for partition in topics[spec.name].partitions.values())
            for spec in specs
        ]
        if all(ready):
            return
        if time.monotonic() > deadline:
            raise TopicCatalogError(f"new topics still have partitions without a leader after {_TIMEOUT_S}s")
        time.sleep(0.1)


def _reconcile_configs(admin: AdminClient, specs: list[TopicSpec], min_insync_replicas: int) -> list[TopicChange]:
    if not specs:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs]
    described = admin.describe_configs(resources, request_timeout=_TIMEOUT_S)
    changes: list[TopicChange] = []
    for spec, resource in zip(specs, resources, strict=True):
        current = {name: entry.value for name, entry in described[resource].result().items()}
        wanted = spec.config(min_insync_replicas)
        drifted = {name: value for name, value in wanted.items() if current.get(name) != value}
        if not drifted:
            continue
        update = ConfigResource(
            ConfigResource.Type.TOPIC,
            spec.name,
            incremental_configs=[
                ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
                for name, value in sorted(drifted.items())
            ],
        )
        admin.incremental_alter_configs([update])[update].result()
        detail = ", ".join(f"{name}={value}" for name, value in sorted(drifted.items()))
        changes.append(TopicChange(spec.name, "config", detail))
    return changes


def main() -> int:
    """`python -m jobstream.topic_admin`: bring the cluster's topics in line with the catalog (the deployment's Job)."""
    from confluent_kafka import KafkaException

    from jobstream.settings import Settings
    from schemas.topics import topic_catalog

    try:
        settings = Settings.from_env(identity="topic-reconciler")
        admin = AdminClient(settings.kafka.client_config())
        changes = reconcile_topics(
            admin, topic_catalog(settings.topic_replication_factor), settings.topic_min_insync_replicas
        )
    except (JobstreamError, KafkaException) as error:
        print(f"topics: {error}", file=sys.stderr)
        return 1
    for change in changes:
        print(f"topics: {change.topic}: {change.action} {change.detail}")
    print(f"topics: {len(changes)} changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
