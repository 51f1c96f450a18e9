"""Kafka helpers for the harness: offsets, bounded reads, a private acceptance topology, scratch topics."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.servers import python_process
from jobstream.consumer_offsets import commit_at_end
from jobstream.partitioning import KEY_PARTITIONER
from jobstream.settings import KafkaClientSettings, Settings
from schemas.topics import APPLICATION_CREATED, APPLICATION_STAGE_CHANGED, JOB_LIFECYCLE

Offsets = dict[int, int]
_TIMEOUT_S = 10.0
_PROVENANCE_HEADER = "jobstream-topology"


def reader_consumer(kafka: KafkaClientSettings, **extra: object) -> Consumer:
    """A consumer to `assign` partitions to; it never commits."""
    # Assigned, never subscribed nor committed: the group id exists only because librdkafka wants one.
    config = {**kafka.client_config(), "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}", "log_level": 0}
    return Consumer({**config, "enable.auto.commit": False, **extra})


def read_from(
    kafka: KafkaClientSettings,
    topic: str,
    start: Offsets,
    keep: Callable[[Message], bool],
    done: Callable[[list[Message]], bool],
    timeout_s: float,
    settle_s: float = 0.0,
    committed_only: bool = True,
) -> list[Message]:
    """Messages of `topic` from `start` that `keep` accepts, until `done` says so (then `settle_s` more, so a
    duplicate would show) or `timeout_s` passed."""
    isolation = "read_committed" if committed_only else "read_uncommitted"
    consumer = reader_consumer(kafka, **{"isolation.level": isolation})
    kept: list[Message] = []
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
            for message in consumer.consume(1_000, timeout=0.2):
                if message.error() is None and keep(message):
                    kept.append(message)
            if settle_until is None and done(kept):
                settle_until = time.monotonic() + settle_s
    finally:
        consumer.close()
    return kept


def header(message: Message, name: str) -> bytes | None:
    return next((value for key, value in message.headers() or [] if key == name), None)


def written_by(message: Message, group: str) -> bool:
    """Whether the topology running as consumer group `group` wrote `message` (its provenance header)."""
    return header(message, _PROVENANCE_HEADER) == group.encode()


def idempotent_producer(kafka: KafkaClientSettings, **extra: object) -> Producer:
    return Producer(
        {
            **kafka.client_config(),
            "partitioner": KEY_PARTITIONER,
            "enable.idempotence": True,
            "acks": "all",
            "log_level": 0,
            **extra,
        }
    )


def produce_waiting(producer: Producer, topic: str, key: bytes | None, value: bytes | None) -> None:
    """Produce one message, serving delivery reports while the producer's local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            return
        except BufferError:
            producer.poll(0.05)


def flush_all(producer: Producer, timeout_s: float = 60.0) -> None:
    if producer.flush(timeout_s) > 0:
        raise RuntimeError(f"Kafka did not acknowledge every benchmark event within {timeout_s:g} s")


@dataclass
class AcceptanceRun:
    """A private acceptance topology: its own consumer group (starting at the inputs' current end) and state."""

    group: str
    env: dict[str, str]
    log_path: Path


@contextlib.contextmanager
def private_acceptance(settings: Settings, workdir: Path) -> Iterator[AcceptanceRun]:
    """Prepare a group that reads only what is produced from now on; its internal topics and group are deleted
    after. Start its process with `acceptance_process`."""
    group = f"bench-acceptance-{uuid.uuid4().hex[:10]}"
    commit_at_end(settings.kafka, group, [JOB_LIFECYCLE, APPLICATION_CREATED, APPLICATION_STAGE_CHANGED])
    env = {
        **settings.kafka.environment(),
        "JOBSTREAM_ACCEPTANCE_GROUP": group,
        "JOBSTREAM_ACCEPTANCE_STATE_DIR": str(workdir / "acceptance-state"),
        "JOBSTREAM_ACCEPTANCE_METRICS_PORT": "0",
    }
    try:
        yield AcceptanceRun(group, env, workdir / "acceptance.log")
    finally:
        _delete_group_and_internal_topics(settings.kafka, group)


@contextlib.contextmanager
def acceptance_process(run: AcceptanceRun) -> Iterator[None]:
    with python_process("topologies.acceptance", [], run.env, run.log_path):
        yield


@contextlib.contextmanager
def scratch_topic(kafka: KafkaClientSettings, partitions: int) -> Iterator[str]:
    """A topic ``bench-<hex>`` created now and deleted afterwards."""
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    name = f"bench-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)[name].result()
    try:
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=30)[name].result()


def _delete_group_and_internal_topics(kafka: KafkaClientSettings, group: str) -> None:
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    internal = [
        name
        for name in admin.list_topics(timeout=_TIMEOUT_S).topics
        if name.startswith(("changelog__", "repartition__")) and f"__{group}--" in name
    ]
    if internal:
        for future in admin.delete_topics(internal, operation_timeout=30).values():
            future.result()
    with contextlib.suppress(KafkaException):
        admin.delete_consumer_groups([group], request_timeout=_TIMEOUT_S)[group].result()
