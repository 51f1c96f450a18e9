"""The outbox relay (`python -m gateway.outbox_relay`): publishes unsent outbox rows to Kafka, in id order.

A row is marked sent only after the broker acknowledged it (idempotent producer, acks=all). Every produce ends
within the delivery timeout, acknowledged or failed, so nothing is left queued in the producer to be sent twice
later: while Kafka is down, rounds fail, rows stay unsent and the next round retries them. A crash between the
acknowledgement and the mark sends a row again (at least once); consumers dedup by the event's event_id.

One relay publishes at a time: each holds a MySQL named lock while it works, so replicas stand by and one takes
over as soon as the active relay's connection dies.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import pymysql
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import CollectorRegistry

from gateway.outbox_metrics import OutboxMetrics
from jobstream.errors import JobstreamError, SettingsError
from jobstream.partitioning import KEY_PARTITIONER
from jobstream.process_metrics import process_registry
from jobstream.settings import KafkaClientSettings, OutboxSettings, Settings
from state.migrate import connect

LOCK_NAME = "jobstream.outbox_relay"

DeliveryCallback = Callable[[KafkaError | None, Message], None]

log = logging.getLogger("gateway.outbox_relay")


class FatalProducerError(JobstreamError):
    """The producer hit an error it cannot recover from (e.g. a fenced idempotent session): build a new one."""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    key: bytes
    payload: bytes
    # How long ago the row was written (created_at is UTC), as MySQL's clock tells when the row was read.
    age_s: float


def make_producer(kafka: KafkaClientSettings, delivery_timeout_ms: int) -> Producer:
    return Producer(
        {
            **kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # user.registered is joined, partition by partition, with notification.requested that Quix produces.
            "partitioner": KEY_PARTITIONER,
            # Bounds every delivery: a message is acknowledged or failed within this time, never left pending.
            "message.timeout.ms": delivery_timeout_ms,
            "log_level": 0,
        }
    )


def fetch_unsent(connection: pymysql.Connection, limit: int) -> list[OutboxRow]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, topic, message_key, payload, TIMESTAMPDIFF(MICROSECOND, created_at, UTC_TIMESTAMP(6)) "
            "FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT %s",
            (limit,),
        )
        return [
            OutboxRow(int(id_), topic, bytes(key), bytes(payload), max(0.0, int(age_us) / 1e6))
            for id_, topic, key, payload, age_us in cursor
        ]


def publish(producer: Producer, rows: Sequence[OutboxRow]) -> list[int]:
    """Produce `rows` and wait for every delivery report; the ids the broker acknowledged, in id order."""
    acknowledged: list[int] = []
    failures: list[KafkaError] = []

    def report(row_id: int) -> DeliveryCallback:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is None:
                acknowledged.append(row_id)
            else:
                failures.append(error)

        return on_delivery

    for row in rows:
        while True:
            try:
                producer.produce(row.topic, key=row.key, value=row.payload, on_delivery=report(row.id))
                break
            except BufferError:
                producer.poll(0.1)
    # message.timeout.ms guarantees each message a final report, so this loop ends.
    while len(producer) > 0:
        producer.flush(1.0)
    if failures:
        log.warning("%d of %d outbox rows not acknowledged: %s", len(failures), len(rows), failures[0])
        if any(error.fatal() for error in failures):
            raise FatalProducerError(str(failures[0]))
    return sorted(acknowledged)


def mark_sent(connection: pymysql.Connection, ids: Sequence[int]) -> None:
    """Mark rows sent, on an autocommit connection (only placeholders are formatted into the statement)."""
    if not ids:
        return
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE outbox SET sent_at = NOW(3) WHERE id IN ({placeholders})", tuple(ids))


def relay_once(
    connection: pymysql.Connection, producer: Producer, batch_size: int, metrics: OutboxMetrics | None = None
) -> int:
    """One round: publish up to `batch_size` unsent rows, mark the acknowledged ones; how many were sent."""
    rows = fetch_unsent(connection, batch_size)
    if metrics is not None:  # the oldest row's age before this round publishes it, whatever becomes of it
        metrics.found(rows[0].age_s if rows else 0.0)
    if not rows:
        return 0
    sent = publish(producer, rows)
    mark_sent(connection, sent)
    if metrics is not None:
        metrics.sent(published=len(sent), unacknowledged=len(rows) - len(sent))
    return len(sent)


def take_lock(connection: pymysql.Connection, name: str = LOCK_NAME) -> bool:
    """Whether this connection now holds the relay lock (it keeps it until it closes)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", (name,))
        (locked,) = cursor.fetchone()
    return locked == 1


def run(settings: Settings, stop: threading.Event, metrics: OutboxMetrics | None = None) -> None:
    """Relay until `stop` is set; survives MySQL and Kafka outages by retrying after a poll interval.

    It records into `metrics` (by default ones nobody serves); whoever passes them serves their registry."""
    metrics = metrics or OutboxMetrics(CollectorRegistry())
    outbox: OutboxSettings = settings.outbox
    idle_s = outbox.poll_interval_ms / 1000
    producer = make_producer(settings.kafka, outbox.delivery_timeout_ms)
    connection: pymysql.Connection | None = None
    while not stop.is_set():
        try:
            if connection is None:
                # Autocommit (connect's default): every poll sees the rows committed since the last one.
                candidate = connect(settings.mysql)
                if not take_lock(candidate):
                    candidate.close()
                    stop.wait(idle_s)
                    continue
                connection = candidate
                metrics.lock(held=True)
            if relay_once(connection, producer, outbox.batch_size, metrics) < outbox.batch_size:
                stop.wait(idle_s)
        except FatalProducerError:
            metrics.failed("kafka")
            producer = make_producer(settings.kafka, outbox.delivery_timeout_ms)
        except (pymysql.MySQLError, KafkaException) as error:
            log.warning("outbox relay round failed, retrying: %s", error)
            metrics.failed("mysql" if isinstance(error, pymysql.MySQLError) else "kafka")
            if connection is not None:
                connection.close()
                connection = None
                metrics.lock(held=False)
            stop.wait(idle_s)
    if connection is not None:
        connection.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env(identity="outbox-relay")
    except SettingsError as error:
        print(f"outbox relay: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    metrics = OutboxMetrics(process_registry())
    metrics.serve(settings.outbox.metrics_port)
    log.info("relaying the outbox to Kafka at %s", settings.kafka.bootstrap)
    run(settings, stop, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
