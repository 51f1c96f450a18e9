import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from jobstream.consumer_offsets import commit_at_end, commit_offsets
from sinks.sre.lag import group_lag
from tests.kafka_helpers import idempotent_producer


@pytest.fixture
def scratch_topic(kafka_admin):
    name = f"test.offsets-{uuid.uuid4().hex[:8]}"
    kafka_admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result()
    yield name
    kafka_admin.delete_topics([name])[name].result()


def test_commit_at_end_starts_a_group_at_every_partitions_high_watermark(settings, scratch_topic):
    producer = idempotent_producer(settings.kafka)
    for i in range(30):
        producer.produce(scratch_topic, key=str(i).encode(), value=b"x")
    assert producer.flush(30) == 0
    group = f"test-offsets-{uuid.uuid4().hex[:8]}"

    commit_at_end(settings.kafka, group, [scratch_topic])

    rows = group_lag(settings.kafka, group)
    assert sorted(row.partition for row in rows) == [0, 1, 2]
    assert sum(row.committed for row in rows) == 30
    assert all(row.lag == 0 for row in rows)


def test_a_commit_refused_for_a_lasting_reason_fails_at_once(settings):
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "test-offsets-missing"})
    started = time.monotonic()
    try:
        with pytest.raises(KafkaException):
            commit_offsets(consumer, [TopicPartition(f"test.missing-{uuid.uuid4().hex[:8]}", 0, 1)])
    finally:
        consumer.close()
    assert time.monotonic() - started < 10
