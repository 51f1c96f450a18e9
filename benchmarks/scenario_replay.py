"""Scenario 6, replay speed: `sinks.sre.replay.replay` rebuilding the applications read model (applications,
application_stage_history, job_funnel) from N application.decided events, over a baseline reading the same
events in the same run.

The harness produces N events, keyed by job_id as the acceptance topology writes them, into a scratch topic with
the catalog topic's partition count (the model's application.stage_changed is read from an empty one), then times:
- a bare confluent-kafka consumer reading them back as replay does (assign from the earliest offsets,
  read_committed) and Avro-decoding each one: the reading + decoding ceiling;
- the replay itself, the real path (shadow tables, batched upserts, checksum, swap, catch-up), into a scratch
  database with every migration, pointed at the scratch topics through `replay(sources=...)`;
- a snapshot of the rebuilt model into a scratch topic (`sinks.sre.snapshot.take_snapshot`), and a replay from it.
The whole scenario has a time cap; the scratch topics and database are dropped after, even on failure.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from benchmarks.fixtures import scratch_database
from benchmarks.kafka_tools import flush_all, idempotent_producer, produce_waiting, reader_consumer, scratch_topic
from benchmarks.report import Table, ratio
from jobstream.consumer_offsets import end_offsets
from jobstream.settings import Settings
from schemas import load_event_schemas, topic_catalog
from schemas.topics import APPLICATION_DECIDED, APPLICATION_STAGE_CHANGED
from sinks.mysql.models import read_models
from sinks.sre.replay import replay
from sinks.sre.snapshot import take_snapshot
from state.migrate import connect

# Replay's default (`python -m sinks.sre.replay --batch-size`): events per transaction, and per consume() call.
_BATCH = 2_000
# Events are historical: one decision every 30 s from here on (a year for 1,000,000).
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_REASONS = ("job_full", "job_closed", "past_deadline", "candidate_blocked")


class OverBudget(BaseException):
    """The scenario ran past its time cap.

    A BaseException, like KeyboardInterrupt: raised by a timer signal wherever the code is, it must not be taken
    for a MySQL error and retried, nor for a corrupt event and wrapped.
    """


@dataclass(frozen=True)
class ReplayPlan:
    events: int
    jobs: int
    candidates: int
    cap_s: float

    @classmethod
    def for_mode(cls, quick: bool) -> ReplayPlan:
        # Both modes: 100 applications per job, each candidate applying to 4 jobs. The full replay alone took over
        # 20 minutes on a 2-core dev machine (MySQL-bound); 28 leave a 30-minute outer timeout room for the
        # cleanup, which its SIGTERM would skip.
        return cls(20_000, 200, 5_000, 180) if quick else cls(1_000_000, 10_000, 250_000, 1_680)


def decided_events(plan: ReplayPlan) -> Iterator[dict[str, object]]:
    """`plan.events` application.decided records, one per (job, candidate)."""

    def new_id() -> str:
        return str(uuid.uuid4())

    jobs = [(new_id(), new_id()) for _ in range(plan.jobs)]
    candidates = [new_id() for _ in range(plan.candidates)]
    per_job = -(-plan.events // plan.jobs)
    for index in range(plan.events):
        job, round_ = index % plan.jobs, index // plan.jobs
        job_id, company_id = jobs[job]
        rejected = index % 5 == 0
        submitted_at = _EPOCH + timedelta(seconds=30 * index)
        yield {
            "event_id": new_id(),
            "application_id": new_id(),
            "job_id": job_id,
            # Distinct within a job (round_ < per_job <= candidates): the table keeps one row per (job, candidate).
            "candidate_id": candidates[(job * per_job + round_) % plan.candidates],
            "company_id": company_id,
            "outcome": "rejected" if rejected else "accepted",
            "reason": _REASONS[index // 5 % len(_REASONS)] if rejected else None,
            "submitted_at": submitted_at,
            "decided_at": submitted_at + timedelta(milliseconds=180),
        }


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    plan = ReplayPlan.for_mode(quick)
    partitions = {spec.name: spec for spec in topic_catalog(settings.topic_replication_factor)}[
        APPLICATION_DECIDED
    ].partitions
    with (
        scratch_topic(settings.kafka, partitions) as topic,
        scratch_topic(settings.kafka, partitions) as no_stages,
        scratch_topic(settings.kafka, partitions) as snapshots,
        scratch_database(settings, migrated=True) as database,
        _capped(plan.cap_s, f"the replay scenario ({plan.events:,} events)"),
    ):
        sources = {APPLICATION_DECIDED: topic, APPLICATION_STAGE_CHANGED: no_stages}
        produce_s = _produce(settings, topic, plan)
        read_s = _read_and_decode(settings, topic, plan.events)
        started = time.perf_counter()
        result = replay(
            settings,
            [read_models()["applications"]],
            database=database,
            batch_size=_BATCH,
            # The full run takes many minutes: show replay's own progress bar (stderr), as its CLI does.
            progress=not quick,
            sources=sources,
            snapshots=None,
        )
        replay_s = time.perf_counter() - started
        if result.events != plan.events or result.catch_up_events:
            read = f"{result.events:,} + {result.catch_up_events:,} (catch-up)"
            raise RuntimeError(f"replay read {read} events, not {plan.events:,}")
        rows = _applications(settings, database)
        if rows != plan.events:
            raise RuntimeError(f"replay rebuilt {rows:,} applications from {plan.events:,} events")
        snapshot = _from_a_snapshot(settings, database, snapshots, sources, quick, result.checksum)

    replay_rate, read_rate = plan.events / replay_s, plan.events / read_s
    table = Table(f"Replay speed: the applications read model rebuilt from {plan.events:,} application.decided events")
    table.add("replay (sinks.sre.replay.replay, wall time / events)", replay_rate, "events/s")
    table.add("replay wall time", replay_s, "s")
    table.add("rows in the rebuilt applications table", rows, "")
    table.add("rebuilt model checksum (sha256, first 16 hex digits; full in the notes)", result.checksum[:16], "")
    table.add("raw read_committed consume + Avro decode, same topic", read_rate, "events/s")
    table.add("ratio replay / raw read + decode", ratio(replay_rate, read_rate), "x")
    table.add(
        "snapshot: rebuild as replay does, then write every row (sinks.sre.snapshot), wall time", snapshot.take_s, "s"
    )
    table.add("snapshot rows written to Kafka", snapshot.rows, "")
    table.add(
        "replay from that snapshot (load and verify its rows, no events after it), wall time", snapshot.replay_s, "s"
    )
    table.add("replay from the snapshot: rows loaded / s", snapshot.rows / snapshot.replay_s, "rows/s")
    table.add(
        "ratio replay from the snapshot / replay of every event, wall time", ratio(snapshot.replay_s, replay_s), "x"
    )
    table.add(f"producing the {plan.events:,} events (setup, not a figure)", produce_s, "s")
    table.notes += [
        f"{plan.jobs:,} jobs x {plan.events // plan.jobs:,} applications, {plan.candidates:,} candidates applying to "
        f"{plan.events // plan.candidates} jobs each, 1 in 5 rejected; keyed by job_id into a scratch topic of "
        f"{partitions} partitions (as {APPLICATION_DECIDED}); idempotent producer, acks=all, linger 50 ms, "
        "uncompressed like the catalog topic",
        f"replay: the applications model (sinks.mysql.models), {APPLICATION_STAGE_CHANGED} read from an empty "
        "scratch topic; "
        f"batch {_BATCH:,}, MySQL pool of JOBSTREAM_SINKS_MYSQL_POOL_SIZE="
        f"{settings.sinks.mysql_pool_size}; job_funnel recomputed once, for every job, after the last batch "
        "(sinks.mysql.funnel.refresh_every_funnel)",
        "replay's wall time includes its shadow tables, the checksum of the rebuilt tables, the swap and the "
        "catch-up pass (nothing to catch up here)",
        f"model checksum of {', '.join(result.tables)} (sinks.sre.checksum.model_checksum): {result.checksum}",
        "the snapshot is built from scratch (no earlier one), like a first daily run; the replay from it has the same "
        "checksum (checked), and its rows are checked against the manifest's counts and checksums as they load",
    ]
    return table


@dataclass(frozen=True)
class FromSnapshot:
    take_s: float
    rows: int
    replay_s: float


def _from_a_snapshot(
    settings: Settings, database: str, topic: str, sources: dict[str, str], quick: bool, expected: str
) -> FromSnapshot:
    """Snapshot the rebuilt applications model into `topic`, then replay it from there; both timed."""
    model = read_models()["applications"]
    started = time.perf_counter()
    taken = take_snapshot(settings, models=[model], database=database, topic=topic, sources=sources, progress=not quick)
    take_s = time.perf_counter() - started
    started = time.perf_counter()
    result = replay(
        settings, [model], database=database, batch_size=_BATCH, progress=False, sources=sources, snapshots=topic
    )
    replay_s = time.perf_counter() - started
    if result.events or result.checksum != expected or taken.checksum != expected:
        raise RuntimeError(f"the replay from a snapshot read {result.events:,} events, checksum {result.checksum}")
    return FromSnapshot(take_s, sum(table.rows for table in taken.manifest.tables.values()), replay_s)


@contextlib.contextmanager
def _capped(seconds: float, what: str) -> Iterator[None]:
    """Raise `OverBudget` in the main thread once `seconds` have passed (SIGALRM)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise OverBudget(f"{what} ran past its {seconds:g} s cap; the scratch topics and database are dropped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _produce(settings: Settings, topic: str, plan: ReplayPlan) -> float:
    """Produce the plan's events, keyed by job_id; returns the seconds it took."""
    decided = load_event_schemas()["application_decided"]
    producer = idempotent_producer(settings.kafka, **{"linger.ms": 50, "queue.buffering.max.messages": 1_000_000})
    started = time.perf_counter()
    for record in decided_events(plan):
        produce_waiting(producer, topic, str(record["job_id"]).encode(), decided.encode(record))
        producer.poll(0)
    flush_all(producer, timeout_s=120)
    produce_s = time.perf_counter() - started
    written = sum(end_offsets(settings.kafka, topic).values())
    if written != plan.events:
        raise RuntimeError(f"{written:,} of {plan.events:,} events reached {topic}")
    return produce_s


def _read_and_decode(settings: Settings, topic: str, events: int) -> float:
    """Seconds to read every event of `topic` and Avro-decode it, as replay reads (its batch, read_committed)."""
    decoder = load_event_schemas()["application_decided"]
    consumer = reader_consumer(settings.kafka, **{"isolation.level": "read_committed", "enable.partition.eof": True})
    count = 0
    try:
        pending = set(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        started = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        while pending:
            for message in consumer.consume(num_messages=_BATCH, timeout=1.0):
                error = message.error()
                if error is None:
                    decoder.decode(message.value() or b"")
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    raise KafkaException(error)
        read_s = time.perf_counter() - started
    finally:
        consumer.close()
    if count != events:
        raise RuntimeError(f"the raw reader decoded {count:,} events of {topic}, not {events:,}")
    return read_s


def _applications(settings: Settings, database: str) -> int:
    with connect(settings.mysql, database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM applications")
        (rows,) = cursor.fetchone()
    return int(rows)
