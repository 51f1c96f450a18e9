"""Scenario 4, topology efficiency: the acceptance topology's decisions/s over a raw confluent-kafka
consume -> produce loop (the client's ceiling on this machine) reading the same input.

The harness writes N application.created events for jobs it created (so each is accepted, with state written),
then starts a private acceptance process on a consumer group that begins at those events, and times its
application.decided output from the first to the last decision (read_uncommitted, so the timing is not rounded to
its transaction commits; the count is checked read_committed). The raw loop then reads the same offsets, produces
each message unchanged to a scratch topic, and is timed from its first message to its last acknowledgement.
A second loop adds the Avro round trip and a transaction per checkpoint, to split the topology's price between
exactly-once Kafka work and its own per-message processing (Quix, state, rules, 2-3 outputs per input).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from benchmarks.fixtures import APPLICATION_BODY, create_jobs
from benchmarks.kafka_tools import (
    acceptance_process,
    flush_all,
    idempotent_producer,
    private_acceptance,
    produce_waiting,
    read_from,
    reader_consumer,
    scratch_topic,
    written_by,
)
from benchmarks.report import Table, ratio
from jobstream.consumer_offsets import end_offsets
from jobstream.settings import KafkaClientSettings, Settings
from schemas import load_event_schemas
from schemas.topics import APPLICATION_CREATED, APPLICATION_DECIDED, JOB_PARTITIONS


@dataclass(frozen=True)
class TopologyPlan:
    events: int
    jobs: int
    timeout_s: float

    @classmethod
    def for_mode(cls, quick: bool) -> TopologyPlan:
        return cls(300, 10, 90) if quick else cls(20_000, 100, 300)


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    plan = TopologyPlan.for_mode(quick)
    kafka = settings.kafka
    with private_acceptance(settings, workdir) as acceptance:
        input_start = end_offsets(kafka, APPLICATION_CREATED)
        decided_start = end_offsets(kafka, APPLICATION_DECIDED)
        job_ids = _produce_input(settings, plan)
        input_end = end_offsets(kafka, APPLICATION_CREATED)
        jobs = set(job_ids)
        ours = lambda m: m.key() is not None and m.key().decode() in jobs and written_by(m, acceptance.group)  # noqa: E731
        with acceptance_process(acceptance):
            timed = _timed_read(kafka, decided_start, ours, plan)
            committed = read_from(kafka, APPLICATION_DECIDED, decided_start, ours, lambda k: len(k) >= plan.events, 30)
    topology_rate = ratio(max(0, len(timed.first_seen) - 1), timed.span_s)
    raw_rate, raw_count = _raw_loop(kafka, input_start, input_end, plan)
    commit_s = settings.acceptance.commit_interval_ms / 1000
    eos_rate, eos_count = _raw_loop(kafka, input_start, input_end, plan, commit_interval_s=commit_s)
    table = Table(f"Topology efficiency: {plan.events:,} application.created events over {plan.jobs} open jobs")
    table.add("acceptance topology: decisions/s (first to last output)", topology_rate, "msg/s")
    table.add("acceptance topology: decided (read_committed) / input", f"{_unique(committed):,} / {plan.events:,}", "")
    table.add("raw consume->produce loop (same offsets)", raw_rate, "msg/s")
    table.add("raw loop: messages copied", raw_count, "")
    table.add("ratio acceptance / raw loop", ratio(topology_rate, raw_rate), "x")
    table.add(f"raw loop + Avro decode/encode + a transaction every {commit_s:g} s", eos_rate, "msg/s")
    table.add("that loop: messages copied", eos_count, "")
    table.add("ratio acceptance / transactional Avro loop", ratio(topology_rate, eos_rate), "x")
    table.notes += [
        "acceptance: `python -m topologies.acceptance` with a private group committed at the inputs' end first, "
        "exactly-once (one Kafka transaction per 1 s checkpoint), RocksDB state + changelog, Avro in and out, "
        "2-3 outputs per input (decision, candidate and employer notifications)",
        "raw loop: one confluent-kafka Consumer (assign) + idempotent Producer, bytes unchanged, in the harness "
        "process, to a scratch topic created and deleted by the harness; the transactional loop also decodes and "
        "re-encodes each Avro event and commits outputs + offsets in one transaction per checkpoint interval",
    ]
    return table


def _produce_input(settings: Settings, plan: TopologyPlan) -> list[str]:
    events = load_event_schemas()
    producer = idempotent_producer(settings.kafka, **{"linger.ms": 20})
    job_ids = [str(uuid.uuid4()) for _ in range(plan.jobs)]
    create_jobs(settings, job_ids)
    created = events["application_created"]
    for index in range(plan.events):
        job_id = job_ids[index % plan.jobs]
        record = {
            "event_id": str(uuid.uuid4()),
            "application_id": str(uuid.uuid4()),
            "job_id": job_id,
            "candidate_id": str(uuid.uuid4()),
            "idempotency_key": None,
            **APPLICATION_BODY,
            "submitted_at": datetime.now(UTC),
        }
        produce_waiting(producer, APPLICATION_CREATED, job_id.encode(), created.encode(record))
        producer.poll(0)
    flush_all(producer)
    return job_ids


@dataclass
class _Timed:
    first_seen: dict[str, float]

    @property
    def span_s(self) -> float:
        times = self.first_seen.values()
        return max(times) - min(times) if len(self.first_seen) > 1 else 0.0


def _timed_read(
    kafka: KafkaClientSettings, start: dict[int, int], keep: Callable[[Message], bool], plan: TopologyPlan
) -> _Timed:
    """When each decision first became readable (uncommitted), until all are in or the timeout passed."""
    decided = load_event_schemas()["application_decided"]
    first_seen: dict[str, float] = {}
    consumer = reader_consumer(kafka, **{"isolation.level": "read_uncommitted"})
    try:
        consumer.assign([TopicPartition(APPLICATION_DECIDED, p, offset) for p, offset in start.items()])
        deadline = time.monotonic() + plan.timeout_s
        while time.monotonic() < deadline and len(first_seen) < plan.events:
            for message in consumer.consume(1_000, timeout=0.2):
                if message.error() is None and keep(message):
                    first_seen.setdefault(decided.decode(message.value())["application_id"], time.monotonic())
    finally:
        consumer.close()
    return _Timed(first_seen)


def _unique(messages: list[Message]) -> int:
    decided = load_event_schemas()["application_decided"]
    return len({decided.decode(m.value())["application_id"] for m in messages})


def _raw_loop(
    kafka: KafkaClientSettings,
    start: dict[int, int],
    end: dict[int, int],
    plan: TopologyPlan,
    commit_interval_s: float | None = None,
) -> tuple[float, int]:
    """Copy [start, end) of the input to a scratch topic; messages/s from the first read to the last ack.

    With `commit_interval_s`, the loop also decodes and re-encodes each Avro event and commits a Kafka transaction
    (outputs + input offsets) every interval, as the topology's exactly-once checkpoints do."""
    remaining = {p: end[p] - start[p] for p in start if end[p] > start[p]}
    total = sum(remaining.values())
    exactly_once = commit_interval_s is not None
    group = f"bench-rawloop-{uuid.uuid4().hex[:8]}"
    event = load_event_schemas()["application_created"]
    with scratch_topic(kafka, JOB_PARTITIONS) as topic:
        consumer = reader_consumer(kafka, **{"fetch.wait.max.ms": 50, "group.id": group})
        extra: dict[str, object] = {"linger.ms": 5}
        if exactly_once:
            extra["transactional.id"] = group
        producer = idempotent_producer(kafka, **extra)
        copied = 0
        try:
            consumer.assign([TopicPartition(APPLICATION_CREATED, p, start[p]) for p in remaining])
            if exactly_once:
                producer.init_transactions(30)
                producer.begin_transaction()
            deadline = time.monotonic() + plan.timeout_s
            started: float | None = None
            last_commit = time.monotonic()
            while copied < total and time.monotonic() < deadline:
                for message in consumer.consume(1_000, timeout=0.2):
                    if message.error() is not None or remaining.get(message.partition(), 0) <= 0:
                        continue
                    started = started or time.monotonic()
                    remaining[message.partition()] -= 1
                    value = event.encode(event.decode(message.value())) if exactly_once else message.value()
                    produce_waiting(producer, topic, message.key(), value)
                    copied += 1
                producer.poll(0)
                if exactly_once and (copied >= total or time.monotonic() - last_commit >= commit_interval_s):
                    _commit(producer, consumer)
                    last_commit = time.monotonic()
                    if copied < total:
                        producer.begin_transaction()
            flush_all(producer)
            finished = time.monotonic()
        finally:
            consumer.close()
            if exactly_once:
                _delete_group(kafka, group)
    return ratio(copied, finished - (started or finished)), copied


def _commit(producer: Producer, consumer: Consumer) -> None:
    positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)


def _delete_group(kafka: KafkaClientSettings, group: str) -> None:
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    for future in admin.delete_consumer_groups([group], request_timeout=10).values():
        with contextlib.suppress(KafkaException):
            future.result()
