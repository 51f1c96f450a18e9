import uuid

import pytest
from confluent_kafka.admin import ConfigResource

from jobstream.topic_admin import TopicCatalogError, reconcile_topics
from schemas.avro import load_event_schemas
from schemas.topics import READ_MODEL_SNAPSHOT, REPLAYABLE_MS, TopicSpec, topic_catalog
from sinks.mysql.models import read_models
from tests.kafka_helpers import consume_until, group_consumer, header, idempotent_producer


@pytest.fixture
def scratch_topic(kafka_admin):
    name = f"test.scratch-{uuid.uuid4().hex[:8]}"
    yield name
    kafka_admin.delete_topics([name])[name].result()


def _configs(admin, topic):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {name: entry.value for name, entry in admin.describe_configs([resource])[resource].result().items()}


def test_catalog_topics_exist_as_declared(kafka_admin, settings):
    topics = kafka_admin.list_topics(timeout=10).topics
    for spec in topic_catalog(settings.topic_replication_factor):
        assert spec.name in topics
        assert len(topics[spec.name].partitions) == spec.partitions
        configs = _configs(kafka_admin, spec.name)
        assert configs["cleanup.policy"] == spec.cleanup_policy
        assert configs["retention.ms"] == str(spec.retention_ms)


@pytest.mark.unit
def test_every_catalog_event_has_a_committed_schema():
    events = load_event_schemas()
    for spec in topic_catalog(1):
        assert spec.event is None or spec.event in events, spec.name


@pytest.mark.unit
def test_every_topic_says_why_it_keeps_what_it_keeps():
    for spec in topic_catalog(1):
        assert len(spec.retention_reason) > 20, spec.name


@pytest.mark.unit
def test_what_a_read_model_is_rebuilt_from_is_compacted_or_outlives_a_month_of_failed_snapshots():
    by_name = {spec.name: spec for spec in topic_catalog(1)}
    read = {topic for model in read_models().values() for topic in model.topics}
    for topic in read:
        spec = by_name[topic]
        assert spec.cleanup_policy == "compact" or spec.retention_ms >= REPLAYABLE_MS, topic
    snapshot = by_name[READ_MODEL_SNAPSHOT]
    assert (snapshot.cleanup_policy, snapshot.retention_ms) == ("compact", -1)


@pytest.mark.unit
def test_co_partitioned_topics_have_equal_partition_counts():
    by_name = {spec.name: spec for spec in topic_catalog(1)}
    assert by_name["application.created"].partitions == by_name["job.lifecycle"].partitions
    assert by_name["application.created"].key == by_name["job.lifecycle"].key == "job_id"


def test_reconcile_creates_then_changes_nothing(kafka_admin, settings):
    assert reconcile_topics(kafka_admin, topic_catalog(settings.topic_replication_factor), 1) == []


def test_reconcile_repairs_drifted_config_and_adds_partitions(kafka_admin, scratch_topic):
    spec = TopicSpec(scratch_topic, partitions=2, replication_factor=1, key="id", description="scratch", event=None)
    assert [change.action for change in reconcile_topics(kafka_admin, [spec], 1)] == ["created"]

    grown = TopicSpec(
        scratch_topic,
        partitions=4,
        replication_factor=1,
        key="id",
        description="scratch",
        event=None,
        retention_ms=60_000,
    )
    changes = reconcile_topics(kafka_admin, [grown], 1)
    assert {(change.action, change.detail) for change in changes} == {
        ("partitions", "2 -> 4"),
        ("config", "retention.ms=60000"),
    }
    assert len(kafka_admin.list_topics(scratch_topic, timeout=10).topics[scratch_topic].partitions) == 4
    assert _configs(kafka_admin, scratch_topic)["retention.ms"] == "60000"
    assert reconcile_topics(kafka_admin, [grown], 1) == []


def test_reconcile_refuses_to_shrink_partitions(kafka_admin, scratch_topic):
    reconcile_topics(kafka_admin, [TopicSpec(scratch_topic, 3, 1, "id", "scratch", None)], 1)
    with pytest.raises(TopicCatalogError, match="cannot remove partitions"):
        reconcile_topics(kafka_admin, [TopicSpec(scratch_topic, 2, 1, "id", "scratch", None)], 1)


def test_round_trip_through_a_catalog_topic_keeps_per_key_order_and_group_offsets(kafka_admin, settings):
    topic = "application.created"
    run = uuid.uuid4().hex.encode()
    jobs = [f"job-{i}".encode() for i in range(5)]
    sent = [(jobs[i % len(jobs)], f"{i}".encode()) for i in range(200)]
    delivered, failed = [], []

    producer = idempotent_producer(settings.kafka)
    for key, sequence in sent:
        producer.produce(
            topic,
            key=key,
            value=sequence,
            headers={"run": run},
            on_delivery=lambda error, message: (failed if error else delivered).append(message),
        )
    assert producer.flush(30) == 0
    assert failed == []
    assert len(delivered) == len(sent)

    group = f"test-roundtrip-{uuid.uuid4().hex[:8]}"
    consumer = group_consumer(settings.kafka, group)
    consumer.subscribe([topic])
    received = consume_until(consumer, lambda kept: len(kept) >= len(sent), 60, keep=lambda m: header(m, "run") == run)
    consumer.commit(asynchronous=False)
    consumer.close()

    assert len(received) == len(sent)
    for key in jobs:
        in_order = [int(m.value()) for m in received if m.key() == key]
        assert in_order == sorted(in_order)
        assert len({m.partition() for m in received if m.key() == key}) == 1

    # A new member of the same group resumes from the committed offsets: it sees a marker produced
    # after the commit, and nothing of the run before it.
    producer.produce(topic, key=jobs[0], value=b"marker", headers={"run": run})
    assert producer.flush(30) == 0
    again = group_consumer(settings.kafka, group)
    again.subscribe([topic])
    seen = consume_until(
        again,
        lambda kept: any(m.value() == b"marker" for m in kept),
        60,
        keep=lambda m: header(m, "run") == run,
    )
    again.close()
    assert [m.value() for m in seen] == [b"marker"]
