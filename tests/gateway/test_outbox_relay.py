import dataclasses
import socket
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from gateway.outbox_relay import make_producer, relay_once, run, take_lock
from schemas import load_event_schemas, topic_catalog
from schemas.topics import USER_REGISTERED
from state.migrate import apply_migrations, connect, load_migrations
from tests.kafka_helpers import consume_until, group_consumer

EVENTS = load_event_schemas()["user_registered"]


@pytest.fixture
def scratch_outbox(settings, mysql):
    """A private database holding only the accounts tables, so no other relay sees these rows."""
    name = f"{settings.mysql.database}_outbox_{uuid.uuid4().hex[:8]}"
    with mysql.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        with connect(settings.mysql, database=name) as connection:
            apply_migrations(connection, [m for m in load_migrations() if m.name == "0002_accounts"])
            yield connection
    finally:
        with mysql.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{name}`")


def _event(user_id: str) -> bytes:
    return EVENTS.encode(
        {
            "event_id": str(uuid.uuid4()),
            "user_id": user_id,
            "email": f"{user_id}@example.com",
            "display_name": "Outbox Test",
            "role": "candidate",
            "company_id": None,
            "registered_at": int(time.time() * 1000),
        }
    )


def _insert(connection, user_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO outbox (topic, message_key, payload, created_at) VALUES (%s, %s, %s, NOW(3))",
            (USER_REGISTERED, user_id.encode(), _event(user_id)),
        )
        return cursor.lastrowid


def _unsent(connection) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _consumer_at_end(settings) -> Consumer:
    """A consumer of user.registered positioned at the current end of every partition."""
    consumer = group_consumer(settings.kafka, f"test-outbox-{uuid.uuid4()}")
    partitions = next(s.partitions for s in topic_catalog(1) if s.name == USER_REGISTERED)
    assignment = []
    for partition in range(partitions):
        _, high = consumer.get_watermark_offsets(TopicPartition(USER_REGISTERED, partition), timeout=10)
        assignment.append(TopicPartition(USER_REGISTERED, partition, high))
    consumer.assign(assignment)
    return consumer


def _all_then_a_while(keys: set[str], linger_s: float = 2.0):
    """Done once every key arrived and `linger_s` more passed, so a duplicate sent after them would be seen too."""
    arrived_at: list[float] = []

    def done(kept) -> bool:
        if not arrived_at and {m.key().decode() for m in kept} >= keys:
            arrived_at.append(time.monotonic())
        return bool(arrived_at) and time.monotonic() - arrived_at[0] >= linger_s

    return done


@pytest.mark.unit
def test_user_registered_is_a_catalog_topic_keyed_by_user_id():
    spec = next(s for s in topic_catalog(1) if s.name == USER_REGISTERED)
    assert (spec.key, spec.event) == ("user_id", "user_registered")


def test_rows_stay_unsent_while_kafka_is_unreachable_then_go_out_in_id_order(settings, kafka_admin, scratch_outbox):
    users = [str(uuid.uuid4()) for _ in range(3)]
    ids = [_insert(scratch_outbox, user) for user in users]
    consumer = _consumer_at_end(settings)
    try:
        unreachable = make_producer(
            dataclasses.replace(settings.kafka, bootstrap=f"127.0.0.1:{_closed_port()}"), delivery_timeout_ms=1_000
        )
        assert relay_once(scratch_outbox, unreachable, batch_size=10) == 0
        assert _unsent(scratch_outbox) == ids

        producer = make_producer(settings.kafka, delivery_timeout_ms=10_000)
        assert relay_once(scratch_outbox, producer, batch_size=2) == 2
        assert _unsent(scratch_outbox) == ids[2:]
        assert relay_once(scratch_outbox, producer, batch_size=2) == 1
        assert _unsent(scratch_outbox) == []
        assert relay_once(scratch_outbox, producer, batch_size=2) == 0

        mine = set(users)
        messages = consume_until(
            consumer, lambda kept: len(kept) >= 3, timeout_s=20, keep=lambda m: m.key().decode() in mine
        )
    finally:
        consumer.close()
    assert sorted(m.key().decode() for m in messages) == sorted(users)
    for message in messages:
        assert EVENTS.decode(message.value())["user_id"] == message.key().decode()


def test_only_one_relay_holds_the_lock_until_its_connection_closes(settings):
    lock = f"test.outbox_relay.{uuid.uuid4()}"
    first = connect(settings.mysql)
    with connect(settings.mysql) as second:
        assert take_lock(first, lock) is True
        assert take_lock(second, lock) is False
        first.close()
        deadline = time.monotonic() + 5
        while not take_lock(second, lock):
            assert time.monotonic() < deadline, "the lock was not released when its holder's connection closed"
            time.sleep(0.1)


@pytest.mark.anyio
async def test_registering_while_the_relay_runs_publishes_exactly_one_event_per_user(
    settings, kafka_admin, accounts_client, mysql
):
    client = await accounts_client()
    consumer = _consumer_at_end(settings)
    fast = dataclasses.replace(settings, outbox=dataclasses.replace(settings.outbox, poll_interval_ms=50))
    stop = threading.Event()
    relay = threading.Thread(target=run, args=(fast, stop), daemon=True)
    relay.start()
    try:
        registered = {}
        for index in range(3):
            email = f"outbox-{index}-{uuid.uuid4().hex[:10]}@example.com"
            response = await client.post(
                "/v1/auth/register", json={"email": email, "password": "a long enough password", "display_name": "O"}
            )
            assert response.status_code == 201, response.text
            registered[response.json()["user"]["user_id"]] = email
        messages = consume_until(
            consumer, _all_then_a_while(set(registered)), timeout_s=30, keep=lambda m: m.key().decode() in registered
        )
    finally:
        stop.set()
        relay.join(timeout=30)
        consumer.close()
    assert not relay.is_alive()
    assert sorted(m.key().decode() for m in messages) == sorted(registered)
    for message in messages:
        event = EVENTS.decode(message.value())
        assert (event["user_id"], event["email"]) == (message.key().decode(), registered[event["user_id"]])
    with mysql.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(registered))
        cursor.execute(
            f"SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND message_key IN ({placeholders})",
            tuple(user.encode() for user in registered),
        )
        assert cursor.fetchone() == (len(registered),)


def test_the_relay_puts_a_user_on_the_partition_quix_puts_their_notifications_on(settings, kafka_admin):
    """The notifications stage joins user.registered (the relay) with notification.requested (Quix) by partition."""
    from confluent_kafka.admin import NewTopic
    from quixstreams.kafka import Producer as QuixProducer
    from quixstreams.kafka.configuration import ConnectionConfig

    from jobstream.partitioning import KEY_PARTITIONER

    topic = f"test.partitioner-{uuid.uuid4().hex[:8]}"
    kafka_admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result()
    keys = [str(uuid.uuid4()).encode() for _ in range(40)]
    try:
        placed: dict[str, dict[bytes, int]] = {"relay": {}, "quix": {}}

        def record(name: str):
            return lambda error, message: placed[name].__setitem__(message.key(), message.partition())

        relay = make_producer(settings.kafka, 10_000)
        quix = QuixProducer(
            ConnectionConfig.from_librdkafka_dict(settings.kafka.client_config()),
            extra_config={"partitioner": KEY_PARTITIONER},
        )
        for key in keys:
            relay.produce(topic, key=key, value=b"relay", on_delivery=record("relay"))
            quix.produce(topic, key=key, value=b"quix", on_delivery=record("quix"))
        assert relay.flush(10) == 0
        quix.flush(10)
        assert len(placed["relay"]) == len(keys) and placed["relay"] == placed["quix"]
        assert len(set(placed["relay"].values())) > 1  # spread over partitions, not all on one
    finally:
        kafka_admin.delete_topics([topic])[topic].result()
