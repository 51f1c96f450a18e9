"""The first reliability test: on a 3-node KRaft cluster, kill -9 a partition leader while producing
with acks=all; every acknowledged message must still be there afterwards, exactly once."""

import os
import signal
import time

import pytest
from confluent_kafka.admin import AdminClient

from jobstream.settings import KafkaClientSettings
from jobstream.topic_admin import reconcile_topics
from schemas.topics import TopicSpec
from stack.kafka import KafkaCluster
from tests.kafka_helpers import consume_until, group_consumer, idempotent_producer, provisioned

pytestmark = pytest.mark.cluster

MESSAGES = 30_000
KILL_AFTER_ACKS = 8_000
IN_FLIGHT = 500


def _leader_of_partition_zero(admin: AdminClient, topic: str, timeout_s: float = 30) -> int:
    """Each broker learns new partitions on its own time; ask until the one answering knows the leader."""
    deadline = time.monotonic() + timeout_s
    while True:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        if 0 in partitions and partitions[0].leader >= 0:
            return partitions[0].leader
        assert time.monotonic() < deadline, f"no broker knew the leader of {topic}[0] within {timeout_s}s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def three_brokers(settings, tmp_path_factory):
    cluster = KafkaCluster(
        root=tmp_path_factory.mktemp("kafka-3"),
        jar_cache=settings.jar_cache,
        brokers=3,
        base_port=29092,
    )
    try:
        cluster.start(timeout_s=240)
        yield cluster
    finally:
        cluster.stop()
    assert cluster.running_pids() == {}


@pytest.fixture(scope="module")
def cluster_kafka(settings, three_brokers) -> KafkaClientSettings:
    """The tests' own Kafka client settings, on the three-node cluster."""
    return provisioned(three_brokers, settings.kafka)


def test_three_node_quorum_takes_replication_factor_three_and_min_isr_two(three_brokers, cluster_kafka):
    admin = AdminClient({**cluster_kafka.client_config(), "log_level": 0})
    assert three_brokers.broker_ids() == [1, 2, 3]
    spec = TopicSpec("reliability.rf3", partitions=3, replication_factor=3, key="id", description="rf3", event=None)
    reconcile_topics(admin, [spec], min_insync_replicas=2)
    partitions = admin.list_topics("reliability.rf3", timeout=10).topics["reliability.rf3"].partitions
    assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions.values())


def test_kill_9_of_a_leader_while_producing_loses_no_acknowledged_message(three_brokers, cluster_kafka):
    admin = AdminClient({**cluster_kafka.client_config(), "log_level": 0})
    topic = "reliability.kill9"
    spec = TopicSpec(topic, partitions=3, replication_factor=3, key="id", description="kill -9 under load", event=None)
    reconcile_topics(admin, [spec], min_insync_replicas=2)
    leader = _leader_of_partition_zero(admin, topic)

    acked: list[int] = []
    failed: list[str] = []

    def on_delivery(error, message):
        if error is None:
            acked.append(int(message.value()))
        else:
            failed.append(str(error))

    producer = idempotent_producer(cluster_kafka, **{"message.timeout.ms": 120_000})
    killed_at = None
    deadline = time.monotonic() + 180
    for sequence in range(MESSAGES):
        # Like the gateway, keep a bounded number of sends unacknowledged, so the kill lands mid-stream.
        while sequence - len(acked) - len(failed) >= IN_FLIGHT and time.monotonic() < deadline:
            producer.poll(0.01)
        producer.produce(topic, key=str(sequence % 97), value=str(sequence), on_delivery=on_delivery)
        producer.poll(0)
        if killed_at is None and len(acked) >= KILL_AFTER_ACKS:
            os.kill(three_brokers.running_pids()[leader], signal.SIGKILL)
            killed_at = len(acked)
    assert producer.flush(180) == 0

    assert killed_at is not None, "the leader was never killed"
    assert leader not in three_brokers.running_pids()
    assert len(acked) - killed_at > MESSAGES // 2, "too little was acknowledged after the kill"
    assert failed == []

    consumer = group_consumer(cluster_kafka, "reliability-check")
    consumer.subscribe([topic])
    received = consume_until(consumer, lambda kept: len(kept) >= len(acked), 120, keep=lambda m: True)
    consumer.close()
    values = [int(m.value()) for m in received]
    assert len(values) == len(set(values)), "the idempotent producer wrote a message twice"
    assert set(acked) <= set(values), f"{len(set(acked) - set(values))} acknowledged messages were lost"
