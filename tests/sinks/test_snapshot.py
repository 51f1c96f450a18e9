"""Snapshots keep replay complete after retention: real Kafka (forced log deletion) and MariaDB.

Each test works in its own namespace: private copies of the read models' topics (with the catalog's cleanup policy),
its own snapshot topic and database. Retention is forced with DeleteRecords, which moves a partition's log start
offset exactly as the retention check does when it deletes old segments. "The full build" is a replay of every event
before any was deleted; `test_replay.py` proves such a replay equals what the live sink builds.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from jobstream.identities import READ_MODEL_TABLES
from jobstream.settings import Settings
from schemas.topics import READ_MODEL_SNAPSHOT, topic_catalog
from sinks.mysql.models import read_models
from sinks.sre.replay import ReplayError, replay
from sinks.sre.snapshot import take_snapshot
from sinks.sre.snapshot_store import read_manifest
from tests.e2e_harness import MYSQL_SINK_TOPICS
from tests.sinks.test_replay import PRODUCED_EVENTS, checksum, produce_every_model, rows, table_checksums

pytestmark = pytest.mark.timeout(120)


@dataclasses.dataclass(frozen=True)
class Namespace:
    settings: Settings
    database: str
    # Each catalog topic a read model reads -> this test's copy of it.
    sources: dict[str, str]
    snapshots: str


@pytest.fixture
def namespace(settings: Settings, kafka_admin: AdminClient, scratch_database: str):
    prefix = f"test-snapshot-{uuid.uuid4().hex[:8]}"
    specs = {spec.name: spec for spec in topic_catalog(1)}
    sources = {topic: f"{prefix}.{topic}" for topic in MYSQL_SINK_TOPICS}
    snapshots = f"{prefix}.{READ_MODEL_SNAPSHOT}"
    created = [
        NewTopic(copy, specs[topic].partitions, 1, config=specs[topic].config(1))
        for topic, copy in [*sources.items(), (READ_MODEL_SNAPSHOT, snapshots)]
    ]
    for future in kafka_admin.create_topics(created).values():
        future.result()
    local = dataclasses.replace(settings, mysql=dataclasses.replace(settings.mysql, database=scratch_database))
    yield Namespace(local, scratch_database, sources, snapshots)
    for future in kafka_admin.delete_topics([topic.topic for topic in created]).values():
        future.result()


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "unused"})
    try:
        ends = {}
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                ends[(topic, partition)] = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)[1]
        return ends
    finally:
        consumer.close()


def log_starts(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "unused"})
    try:
        return {tp: consumer.get_watermark_offsets(TopicPartition(*tp), 10)[0] for tp in end_offsets(settings, topics)}
    finally:
        consumer.close()


def delete_before(admin: AdminClient, offsets: dict[tuple[str, int], int]) -> None:
    """What retention does to a partition: every record before the offset is gone and the log starts there."""
    wanted = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items() if offset > 0]
    for future in admin.delete_records(wanted).values():
        future.result()


def full_build(ns: Namespace) -> tuple[str, dict[str, str]]:
    """Every model rebuilt from every event (none deleted yet), swapped in: its checksum and its tables'."""
    result = replay(
        ns.settings,
        list(read_models().values()),
        database=ns.database,
        sources=ns.sources,
        snapshots=None,
        catch_up=False,
        progress=False,
    )
    assert result.events == 2 * PRODUCED_EVENTS
    return result.checksum, table_checksums(ns.settings, ns.database)


def test_a_replay_after_retention_deleted_the_events_rebuilds_every_row_of_every_model_from_the_snapshot(
    namespace, kafka_admin
):
    ns = namespace
    deletable = [copy for topic, copy in ns.sources.items() if topic != "job.lifecycle"]
    produce_every_model(ns.settings, ns.sources)
    first = take_snapshot(ns.settings, database=ns.database, topic=ns.snapshots, sources=ns.sources, progress=False)
    assert first.events == PRODUCED_EVENTS and first.tombstoned == 0
    assert sum(table.rows for table in first.manifest.tables.values()) > PRODUCED_EVENTS
    assert set(first.manifest.tables) == set(READ_MODEL_TABLES)
    later = produce_every_model(ns.settings, ns.sources)
    built, built_tables = full_build(ns)

    # Retention deletes every event the snapshot holds, in every event topic (the compacted job.lifecycle keeps its).
    delete_before(kafka_admin, {tp: o for tp, o in first.manifest.offsets.items() if tp[0] in deletable})
    starts = log_starts(ns.settings, deletable)
    assert sum(starts.values()) == PRODUCED_EVENTS - 14, "the first batch's events are gone"
    with pytest.raises(
        ReplayError, match=r"begins at offset \d+, but a rebuild without a snapshot needs it from offset 0"
    ):
        replay(ns.settings, list(read_models().values()), database=ns.database, sources=ns.sources, snapshots=None)
    assert checksum(ns.settings, ns.database) == built, "a refused replay leaves the live tables alone"

    for table in READ_MODEL_TABLES:
        rows(ns.settings, ns.database, f"DELETE FROM {table}")
    result = replay(
        ns.settings,
        list(read_models().values()),
        database=ns.database,
        sources=ns.sources,
        snapshots=ns.snapshots,
        catch_up=False,
        progress=False,
    )

    assert result.events == PRODUCED_EVENTS, "only the events after the snapshot were read"
    assert result.sources[0] == first.manifest.describe()
    assert table_checksums(ns.settings, ns.database) == built_tables
    assert result.checksum == built
    present = rows(
        ns.settings,
        ns.database,
        "SELECT COUNT(*) FROM applications WHERE application_id IN %s",
        (later["applications"],),
    )
    assert present == ((60,),)


def test_a_replay_refuses_when_retention_deleted_events_the_latest_snapshot_does_not_hold(namespace, kafka_admin):
    ns = namespace
    produce_every_model(ns.settings, ns.sources)
    snapshot = take_snapshot(ns.settings, database=ns.database, topic=ns.snapshots, sources=ns.sources, progress=False)
    produce_every_model(ns.settings, ns.sources)
    decided = ns.sources["application.decided"]
    ends = end_offsets(ns.settings, [decided])
    partition = next(p for (_, p), end in ends.items() if end > snapshot.manifest.offsets[(decided, p)])
    delete_before(kafka_admin, {(decided, partition): ends[(decided, partition)]})

    with pytest.raises(ReplayError) as refused:
        replay(
            ns.settings, list(read_models().values()), database=ns.database, sources=ns.sources, snapshots=ns.snapshots
        )

    message = str(refused.value)
    assert f"{decided}[{partition}] begins at offset {ends[(decided, partition)]}" in message
    assert f"needs it from offset {snapshot.manifest.offsets[(decided, partition)]}" in message
    assert snapshot.manifest.snapshot_id in message and "30 days" in message
    assert rows(ns.settings, ns.database, "SHOW TABLES LIKE '%\\_\\_shadow'") == ()


def test_a_snapshot_on_top_of_another_reads_only_newer_events_and_tombstones_the_rows_of_the_one_before(namespace):
    ns = namespace
    produce_every_model(ns.settings, ns.sources)
    first = take_snapshot(ns.settings, database=ns.database, topic=ns.snapshots, sources=ns.sources, progress=False)
    produce_every_model(ns.settings, ns.sources)

    second = take_snapshot(ns.settings, database=ns.database, topic=ns.snapshots, sources=ns.sources, progress=False)

    assert second.events == PRODUCED_EVENTS
    assert second.tombstoned == sum(table.rows for table in first.manifest.tables.values())
    assert second.checksum == full_build(ns)[0]
    live: set[bytes] = set()
    consumer = Consumer({**ns.settings.kafka.client_config(), "group.id": "unused", "enable.partition.eof": True})
    try:
        latest = read_manifest(consumer, ns.snapshots, live_row_keys=live)
    finally:
        consumer.close()
    assert latest == second.manifest
    # Every row key still holding a value is the second snapshot's: the first's rows are tombstoned.
    assert live and all(key.startswith(f"row/{second.manifest.snapshot_id}/".encode()) for key in live)
    assert len(live) == sum(table.rows for table in second.manifest.tables.values())
