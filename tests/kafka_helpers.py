"""Small Kafka client helpers shared by tests: produce with delivery reports, consume until a condition."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, Message, Producer

from jobstream.partitioning import KEY_PARTITIONER
from jobstream.settings import KafkaClientSettings
from stack.identities import wait_until_authenticated
from stack.kafka import KafkaCluster


def provisioned(cluster: KafkaCluster, kafka: KafkaClientSettings) -> KafkaClientSettings:
    """`kafka` pointed at a cluster a test started, once its admin login works (its start provisioned it)."""
    moved = dataclasses.replace(kafka, bootstrap=cluster.bootstrap)
    wait_until_authenticated(moved.client_config())
    return moved


def idempotent_producer(kafka: KafkaClientSettings, **overrides: object) -> Producer:
    return Producer(
        {
            **kafka.client_config(),
            "partitioner": KEY_PARTITIONER,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "log_level": 0,
            **overrides,
        }
    )


def group_consumer(kafka: KafkaClientSettings, group_id: str, **overrides: object) -> Consumer:
    return Consumer(
        {
            **kafka.client_config(),
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
            **overrides,
        }
    )


def consume_until(
    consumer: Consumer,
    done: Callable[[list[Message]], bool],
    timeout_s: float,
    keep: Callable[[Message], bool],
) -> list[Message]:
    """Poll until `done(kept)` or the timeout; returns the kept messages (errors other than EOF raise)."""
    kept: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done(kept):
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(message.error())
        if keep(message):
            kept.append(message)
    return kept


def header(message: Message, name: str) -> bytes | None:
    headers: Iterable[tuple[str, bytes]] = message.headers() or []
    return next((value for key, value in headers if key == name), None)
