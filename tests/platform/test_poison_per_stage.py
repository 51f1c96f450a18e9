"""Every input topic of every stage, fed hostile events: the stage stays up, handles or dead-letters each one,
and processes the good event that follows them.

Hostile events are schema-valid (tests.adversarial, hypothesis), so they reach each stage's processing, plus
bytes no schema reads and an empty (tombstone) value. All of one stage's events share one key, hence one
partition per topic, so the stage's committed offset reaching the end of that partition proves it went past
every one of them, and the good event's output proves it still works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jobstream.consumer_offsets import end_offsets
from jobstream.settings import KafkaClientSettings
from schemas import examples
from schemas.topics import topic_catalog
from stack.smtp import SmtpCapture
from state import redis_keys
from tests.adversarial import UNDECODABLE, hostile_records
from tests.e2e_harness import MYSQL_SINK_TOPICS, REDIS_SINK_TOPICS, Service, Webhook, rows, wait_for
from tests.topology_harness import EVENTS, EventProducer, Output, TopicReader, application_record, ids, job_record

CATALOG = {spec.name: spec for spec in topic_catalog(replication_factor=1)}
ACCEPTANCE_INPUTS = ["job.lifecycle", "application.created", "application.stage_changed"]
ANALYTICS_INPUTS = ["application.decided", "job.viewed", "job.lifecycle"]
SINK_REDIS_DB = 11
UNREADABLE_KINDS = (b"undecodable", b"unknown_schema")
EXAMPLES = 4
EVENTS_PER_TOPIC = 15
HYPOTHESIS = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decided_record(job_id: str) -> dict[str, Any]:
    return dict(examples.application_decided(job_id, company_id=ids("company")))


def notification_record(recipient_id: str) -> dict[str, Any]:
    return dict(examples.notification_requested(recipient_id))


@pytest.fixture(scope="module")
def producer(settings):
    events = EventProducer(settings.kafka)
    yield events
    events.flush()


@pytest.fixture
def dead_letters(settings):
    reader = TopicReader(settings.kafka, "dead_letter", None)
    yield reader
    reader.close()


def feed(producer: EventProducer, data: st.DataObject, topics: list[str], key: str) -> None:
    """Hostile records, then undecodable bytes and a tombstone, to each of `topics`, all under `key`."""
    for topic in topics:
        spec = CATALOG[topic]
        assert spec.event is not None
        event = EVENTS[spec.event]
        records = data.draw(
            st.lists(hostile_records(event, {spec.key: key}), min_size=EVENTS_PER_TOPIC, max_size=EVENTS_PER_TOPIC),
            label=topic,
        )
        for record in records:
            producer.send_raw(topic, key.encode(), event.encode(record))
        for raw in (*UNDECODABLE, None):
            producer.send_raw(topic, key.encode(), raw)
    producer.flush()


def assert_went_past_everything(
    service: Service, kafka: KafkaClientSettings, topics: list[str], timeout_s: float = 60
) -> None:
    """The stage is alive and its group committed, on every partition of `topics`, the end written so far."""
    assert service.group is not None
    ends = {(topic, partition): end for topic in topics for partition, end in end_offsets(kafka, topic).items()}
    consumer = Consumer({**kafka.client_config(), "group.id": service.group, "log_level": 0})
    try:

        def behind() -> list[tuple[str, int, int, int]]:
            assert service.alive(), service.log_tail()
            committed = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
            return [
                (c.topic, c.partition, c.offset, ends[(c.topic, c.partition)])
                for c in committed
                if c.offset < ends[(c.topic, c.partition)]
            ]

        wait_for(lambda: not behind(), timeout_s, f"{service.name} to commit past every hostile event")
    finally:
        consumer.close()
    assert service.alive(), service.log_tail()


def assert_undecodable_dead_lettered(
    dead_letters: TopicReader,
    service: Service,
    topics: list[str],
    also: Callable[[list[Output]], bool] = lambda kept: True,
) -> list[Output]:
    """Each topic's undecodable messages and tombstone are in dead_letter, with a reason, from this stage, and
    `also(kept)` holds of this stage's dead letters; returns them."""
    assert service.group is not None
    group = service.group.encode()
    expected = {topic: len(UNDECODABLE) + 1 for topic in topics}

    def ours(output: Output) -> bool:
        return output.headers.get("jobstream-topology") == group

    def complete(kept: list[Output]) -> bool:
        undecodable = [o for o in kept if o.headers.get("jobstream-dead-letter-kind") in UNREADABLE_KINDS]
        per_topic = {t: sum(o.headers["jobstream-source-topic"] == t.encode() for o in undecodable) for t in topics}
        return all(per_topic[t] >= n for t, n in expected.items()) and also(kept)

    kept = list(dead_letters.read(ours, complete, timeout_s=30))
    dead_letters.kept.clear()  # the next example's copies must be found anew
    assert complete(kept), [
        (o.headers.get("jobstream-source-topic"), o.headers.get("jobstream-dead-letter-kind")) for o in kept
    ]
    assert all(o.headers.get("jobstream-dead-letter-reason") for o in kept)
    return kept


@pytest.fixture
def outcomes(settings):
    reader = TopicReader(settings.kafka, "notification.outcome", EVENTS["notification_outcome"])
    yield reader
    reader.close()


@pytest.fixture
def acceptance(services):
    return services.topology("acceptance", ACCEPTANCE_INPUTS).start()


@pytest.fixture
def analytics(services):
    return services.topology("analytics", ANALYTICS_INPUTS).start()


@pytest.fixture
def delivery(tmp_path):
    """(SMTP capture port, webhook) that accept every notification."""
    with SmtpCapture(tmp_path / "mail") as smtp, Webhook() as webhook:
        yield smtp.port, webhook


@pytest.fixture(params=["fresh", "retry"])
def notifications(request, services, delivery):
    smtp_port, webhook = delivery
    return services.notifications(smtp_port, webhook.url, stage=request.param).start()


@pytest.fixture
def mysql_sink(services, settings, scratch_database):
    url = settings.mysql_url.rsplit("/", 1)[0] + f"/{scratch_database}"
    return services.mysql_sink(url).start()


@pytest.fixture
def redis_sink(services, settings):
    url = settings.redis_url.rsplit("/", 1)[0] + f"/{SINK_REDIS_DB}"
    client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
    client.flushdb()
    try:
        yield services.redis_sink(url).start(), client
    finally:
        client.flushdb()
        client.close()


@given(data=st.data())
@HYPOTHESIS
def test_acceptance_survives_hostile_events_on_each_input(data, acceptance, producer, dead_letters, decided, settings):
    key = ids("job")
    feed(producer, data, ACCEPTANCE_INPUTS, key)
    application = application_record(key)
    producer.send("application.created", "application_created", application)
    producer.flush()
    assert_went_past_everything(acceptance, settings.kafka, ACCEPTANCE_INPUTS)
    wanted = application["application_id"]
    decided.kept.clear()  # what earlier examples kept
    kept = decided.read(lambda o: o.record["application_id"] == wanted, lambda kept: len(kept) >= 1, timeout_s=60)
    assert [o.record["application_id"] for o in kept] == [wanted], acceptance.log_tail()
    assert_undecodable_dead_lettered(dead_letters, acceptance, ACCEPTANCE_INPUTS)


@given(data=st.data())
@HYPOTHESIS
def test_analytics_survives_hostile_events_on_each_input(data, analytics, producer, dead_letters, settings):
    key = ids("job")
    feed(producer, data, ANALYTICS_INPUTS, key)
    producer.send("job.lifecycle", "job_lifecycle", job_record(key))
    producer.send("application.decided", "application_decided", decided_record(key))
    producer.flush()
    assert_went_past_everything(analytics, settings.kafka, ANALYTICS_INPUTS)
    assert_undecodable_dead_lettered(dead_letters, analytics, ANALYTICS_INPUTS)


@given(data=st.data())
@HYPOTHESIS
def test_each_notification_stage_survives_hostile_requests(
    data, notifications, delivery, producer, dead_letters, outcomes, settings
):
    fresh = "fresh" in notifications.name
    topic = "notification.requested" if fresh else "notification.retry"
    # The fresh stage joins user.registered in: its hostile accounts (names, emails) come before the request.
    topics = ["user.registered", topic] if fresh else [topic]
    key = ids("user")
    feed(producer, data, topics, key)
    good = notification_record(key)
    producer.send(topic, "notification_requested", good, key_field="recipient_id")
    producer.flush()
    assert_went_past_everything(notifications, settings.kafka, topics)
    outcomes.kept.clear()  # what earlier examples kept
    sent = outcomes.read(
        lambda o: o.record["notification_id"] == good["notification_id"], lambda kept: len(kept) >= 1, timeout_s=60
    )
    assert [o.record["status"] for o in sent] == ["sent"], notifications.log_tail()
    assert any(body.get("notification_id") == good["notification_id"] for _, body in delivery[1].received)
    assert_undecodable_dead_lettered(dead_letters, notifications, topics)


@given(data=st.data())
@HYPOTHESIS
def test_the_mysql_sink_survives_hostile_events_on_each_input(
    data, mysql_sink, producer, dead_letters, settings, scratch_database
):
    key = ids("job")
    feed(producer, data, MYSQL_SINK_TOPICS, key)
    # A valid event MySQL must refuse (the title column holds 200 characters): dead-lettered, not a stopped sink.
    too_long = job_record(key, title="T" * 5_000)
    producer.send("job.lifecycle", "job_lifecycle", too_long)
    good = decided_record(key)
    producer.send("application.decided", "application_decided", good)
    producer.flush()
    assert_went_past_everything(mysql_sink, settings.kafka, MYSQL_SINK_TOPICS)
    wanted = good["application_id"]
    wait_for(
        lambda: rows(
            settings.mysql, scratch_database, "SELECT status FROM applications WHERE application_id = %s", (wanted,)
        ),
        30,
        "the good decision's row",
    )

    def refused_title(output: Output) -> bool:
        if output.headers.get("jobstream-dead-letter-kind") != b"unprocessable":
            return False
        if output.headers.get("jobstream-source-topic") != b"job.lifecycle":
            return False
        return EVENTS["job_lifecycle"].decode(output.record["raw"])["event_id"] == too_long["event_id"]

    kept = assert_undecodable_dead_lettered(
        dead_letters, mysql_sink, MYSQL_SINK_TOPICS, also=lambda kept: any(refused_title(o) for o in kept)
    )
    [refused] = [o for o in kept if refused_title(o)]
    assert b"1406" in refused.headers["jobstream-dead-letter-reason"], refused.headers


@given(data=st.data())
@HYPOTHESIS
def test_the_redis_sink_survives_hostile_events_on_each_input(data, redis_sink, producer, dead_letters, settings):
    sink, client = redis_sink
    key = ids("job")
    feed(producer, data, REDIS_SINK_TOPICS, key)
    good = decided_record(key)
    producer.send("application.decided", "application_decided", good)
    producer.flush()
    assert_went_past_everything(sink, settings.kafka, REDIS_SINK_TOPICS)
    application_key = redis_keys.application(good["application_id"])
    wait_for(lambda: client.hget(application_key, "status") == "accepted", 30, "the good decision in Redis")
    assert_undecodable_dead_lettered(dead_letters, sink, REDIS_SINK_TOPICS)
