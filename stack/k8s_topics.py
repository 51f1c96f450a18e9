"""`python -m stack.k8s_topics [--check]`: write each Kubernetes overlay's Strimzi `KafkaTopic`s from the catalog.

`schemas/topics.py` stays the one place a topic is declared: `python -m stack up` reconciles it on the local stack,
and this command turns the same specs into the KafkaTopic resources the Strimzi Topic Operator reconciles on a
cluster (`k8s/overlays/<overlay>/kafka-topics.yaml`, committed, so a review shows what a catalog change deploys).
Each overlay has its own replication factor and min.insync.replicas (its Kafka cluster's size), which is why the
files live in the overlays. `--check` writes nothing and exits 1 when a committed file differs from the catalog.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas.topics import TopicSpec, topic_catalog

K8S_DIR = Path(__file__).resolve().parent.parent / "k8s"
# The Strimzi `Kafka` resource the topics belong to (k8s/base/kafka/cluster.yaml).
KAFKA_CLUSTER = "jobstream"
TOPICS_FILE = "kafka-topics.yaml"


@dataclass(frozen=True)
class OverlayKafka:
    """One overlay's Kafka durability: what its brokers can hold (prod: 3 brokers, one may be down)."""

    replication_factor: int
    min_insync_replicas: int


OVERLAYS = {
    "dev": OverlayKafka(replication_factor=1, min_insync_replicas=1),
    "prod": OverlayKafka(replication_factor=3, min_insync_replicas=2),
}


def resource_name(topic: str) -> str:
    """A topic name as a Kubernetes object name: dots and underscores are not both allowed there."""
    return re.sub(r"[._]", "-", topic)


def kafka_topic(spec: TopicSpec, min_insync_replicas: int) -> dict[str, object]:
    """The KafkaTopic for one catalog topic: same name, partitions, replicas and configs as `stack up` creates."""
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": resource_name(spec.name), "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replication_factor,
            "config": spec.config(min_insync_replicas),
        },
    }


def render(overlay: OverlayKafka) -> str:
    """The whole topics file of one overlay, as YAML (a stable layout, so regenerating is byte-for-byte equal)."""
    catalog = topic_catalog(overlay.replication_factor)
    names = [resource_name(spec.name) for spec in catalog]
    if len(set(names)) != len(names):
        raise ValueError(f"two catalog topics map to one Kubernetes name: {names}")
    documents = [_yaml(kafka_topic(spec, overlay.min_insync_replicas)) for spec in catalog]
    header = "# Generated from schemas/topics.py by `python -m stack.k8s_topics`: edit the catalog, not this file.\n"
    return header + "".join(f"---\n{document}" for document in documents)


def _yaml(value: dict[str, object], indent: int = 0) -> str:
    """Block-style YAML of nested dicts and scalars; scalars as JSON, which YAML reads as the same value."""
    lines = []
    for key, item in value.items():
        prefix = " " * indent + f"{key}:"
        if isinstance(item, dict):
            lines.append(prefix + "\n" + _yaml(item, indent + 2))
        else:
            lines.append(f"{prefix} {json.dumps(item)}\n")
    return "".join(lines)


def topics_path(overlay: str) -> Path:
    return K8S_DIR / "overlays" / overlay / TOPICS_FILE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.k8s_topics", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, overlay in OVERLAYS.items():
        path, text = topics_path(name), render(overlay)
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale, run `python -m stack.k8s_topics`: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
