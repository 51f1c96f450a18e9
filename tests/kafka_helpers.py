"""Small Kafka client helpers shared by tests: produce with delivery reports, consume until a condition."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, Message, Producer

from jobstream.partitioning import KEY_PARTITIONER


def idempotent_producer(bootstrap: str, **overrides: object) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": KEY_PARTITIONER,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "log_level": 0,
            **overrides,
        }
    )


def group_consumer(bootstrap: str, group_id: str, **overrides: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
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
