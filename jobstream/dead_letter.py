"""Poison messages: decode each input message, or copy it byte for byte to the ``dead_letter`` topic.

Every stage (topologies and sinks) consumes its topics as raw bytes and decodes them in its first step, so a
message no schema can read is an ordinary value in the stream: ``route_poison`` produces it to ``dead_letter`` in
the same checkpoint (under exactly-once, the same transaction) as the stage's other outputs, and the next message
is processed as usual. A deserializer that raised instead would stop the consumer or, if told to ignore errors,
drop the message silently. A processing step wrapped in ``guarded`` turns a data error it raises on one message
(`jobstream.failures.FailureKind.DATA`) into the same kind of poison value; transient and fatal errors propagate.
A data error raised anywhere else in the dataframe (an output a serializer refuses, a window that cannot hold a
value) reaches `DeadLetterOnError`, every stage's ``on_processing_error``: the message that was being processed is
dead-lettered by a side producer (acknowledged before processing goes on) and the stage moves on.

Headers on the copy, the original headers kept after them: ``jobstream-dead-letter-kind`` (undecodable,
unknown_schema, key_mismatch, invalid, unprocessable), ``jobstream-dead-letter-reason`` (the error),
``jobstream-source-topic``, ``-partition``, ``-offset``, ``jobstream-topology`` (the consumer group) and
``jobstream-dead-lettered-at-ms``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Row, Topic

from jobstream.errors import DependencyUnavailable
from jobstream.failures import FailureKind, classify, describe
from jobstream.settings import KafkaClientSettings
from schemas.avro import EventSchema, Record
from schemas.errors import SchemaError, UnknownWriterSchemaError
from schemas.topics import DEAD_LETTER

_MAX_REASON_CHARS = 2000

# As Quix Streams passes them (its HeadersTuples): a value may be str or bytes.
Headers = Sequence[tuple[str, str | bytes]]


class PoisonKind(StrEnum):
    UNDECODABLE = "undecodable"
    UNKNOWN_SCHEMA = "unknown_schema"
    # The message key is not the record's partitioning field: its state would land under the wrong key.
    KEY_MISMATCH = "key_mismatch"
    # Decodes, but a topology's own check refuses it (an event time no broker would accept, say).
    INVALID = "invalid"
    # Decodes, but the stage's processing raised a data error on it (a header it cannot build, a value MySQL refuses).
    UNPROCESSABLE = "unprocessable"


@dataclass(frozen=True)
class Decoded:
    topic: str
    record: Record
    # The message as consumed, so a later step that cannot handle it can still dead-letter it byte for byte.
    raw: bytes = b""


@dataclass(frozen=True)
class Poison:
    raw: bytes | None
    kind: PoisonKind
    reason: str
    topic: str
    partition: int
    offset: int


class EventDecoder:
    """Decodes each input topic's bytes with its event schema; whatever cannot be decoded becomes a `Poison`.

    `key_field` names the record field the message key must equal (utf-8), or None to accept any key;
    `validate(topic, record)` returns why a decoded record is unusable, or None. Default: no check.
    Use it as ``sdf.apply(decoder, metadata=True)``.
    """

    def __init__(
        self,
        events_by_topic: Mapping[str, EventSchema],
        key_field: str | None,
        validate: Callable[[str, Record], str | None] | None = None,
    ) -> None:
        self._events = dict(events_by_topic)
        self._key_field = key_field
        self._validate = validate

    def __call__(self, value: bytes | None, key: Any, timestamp: int, headers: Any) -> Decoded | Poison:
        context = message_context()
        topic = context.topic

        def poison(kind: PoisonKind, reason: str) -> Poison:
            return Poison(value, kind, reason[:_MAX_REASON_CHARS], topic, context.partition, context.offset)

        if value is None:
            return poison(PoisonKind.UNDECODABLE, "empty value (tombstone)")
        try:
            record = self._events[topic].decode(value)
        except UnknownWriterSchemaError as error:
            return poison(PoisonKind.UNKNOWN_SCHEMA, str(error))
        except SchemaError as error:
            return poison(PoisonKind.UNDECODABLE, str(error))
        if self._key_field is not None:
            expected = str(record[self._key_field]).encode()
            if key != expected:
                return poison(
                    PoisonKind.KEY_MISMATCH, f"key {key!r} is not the record's {self._key_field} {expected!r}"
                )
        problem = None if self._validate is None else self._validate(topic, record)
        if problem is not None:
            return poison(PoisonKind.INVALID, problem)
        return Decoded(topic, record, value)


def guarded(step: Callable[..., Any], *, expand: bool = False) -> Callable[..., Any]:
    """`step` (called with a `Decoded` value first, then whatever Quix passes), with data errors made `Poison`.

    A `DATA` failure on one message yields a `Poison` of kind unprocessable (in a list when `expand`), for
    `route_poison` to send on; transient and fatal failures propagate, to `jobstream.stage_runner`.
    """

    def run(value: Decoded, *args: Any) -> Any:
        try:
            return step(value, *args)
        except Exception as error:
            if classify(error) is not FailureKind.DATA:
                raise
            context = message_context()
            poison = Poison(
                value.raw,
                PoisonKind.UNPROCESSABLE,
                describe(error, _MAX_REASON_CHARS),
                context.topic,
                context.partition,
                context.offset,
            )
            return [poison] if expand else poison

    return run


def dead_letter_headers(poison: Poison, topology: str, original: Headers | None) -> list[tuple[str, str | bytes]]:
    """Why a message was dead-lettered and where it came from, followed by its own headers."""
    return [
        ("jobstream-dead-letter-kind", poison.kind.value.encode()),
        ("jobstream-dead-letter-reason", poison.reason.encode()),
        ("jobstream-source-topic", poison.topic.encode()),
        ("jobstream-source-partition", str(poison.partition).encode()),
        ("jobstream-source-offset", str(poison.offset).encode()),
        ("jobstream-topology", topology.encode()),
        ("jobstream-dead-lettered-at-ms", str(int(time.time() * 1000)).encode()),
        *(original or []),
    ]


def route_poison(
    sdf: StreamingDataFrame,
    dead_letter: Topic,
    topology: str,
    on_poison: Callable[[Poison], None],
) -> StreamingDataFrame:
    """Send the `Poison` values of `sdf` to `dead_letter` (raw bytes, original key); return the other values.

    `dead_letter` must use the "bytes" key and value serializers; `on_poison` is called once per poison message
    (a metric, a log line) before it is produced.
    """
    poison = sdf.filter(lambda value: isinstance(value, Poison))
    poison = poison.update(on_poison)
    poison = poison.set_headers(lambda value, key, timestamp, headers: dead_letter_headers(value, topology, headers))
    poison = poison.apply(lambda value: value.raw)
    poison.to_topic(dead_letter)
    return sdf.filter(lambda value: not isinstance(value, Poison))


class DeadLetterUnavailable(DependencyUnavailable):
    """Kafka did not acknowledge a dead letter in time; the caller must not move past the message."""

    def __init__(self, message: str) -> None:
        super().__init__("kafka", message)


class DeadLetterProducer:
    """Dead letters sent from outside a dataframe (a sink's batch write), acknowledged before `flush` returns.

    A sink commits its offsets only after its batch write returns, so letters flushed inside the write are never
    lost: at worst, after a crash, the batch is written again and its letters sent twice.
    """

    def __init__(self, kafka: KafkaClientSettings, *, timeout_s: float = 10.0) -> None:
        self._producer = Producer(
            {
                **kafka.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": int(timeout_s * 1000),
                "log_level": 0,
            }
        )
        self._timeout_s = timeout_s
        self._failures: list[str] = []

    def send(self, poison: Poison, key: bytes | None, stage: str, original: Headers | None) -> None:
        """Queue `poison` for ``dead_letter``; `flush` waits for it."""

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self._failures.append(f"{poison.topic}[{poison.partition}]@{poison.offset}: {error}")

        self._producer.produce(
            DEAD_LETTER,
            value=poison.raw,
            key=key,
            headers=dead_letter_headers(poison, stage, original),
            on_delivery=delivered,
        )
        self._producer.poll(0)

    def flush(self) -> None:
        """Wait for every letter sent; DeadLetterUnavailable if one was refused or is still unacknowledged."""
        left = self._producer.flush(self._timeout_s)
        failures, self._failures = self._failures, []
        if left or failures:
            unacknowledged = [f"{left} not acknowledged within {self._timeout_s:.0f} s"] if left else []
            raise DeadLetterUnavailable("; ".join([*failures[:3], *unacknowledged]))


class DeadLetterOnError:
    """A Quix ``on_processing_error``: data errors dead-letter their message and are suppressed; others propagate."""

    def __init__(self, producer: DeadLetterProducer, stage: str, on_poison: Callable[[Poison], None]) -> None:
        self._producer = producer
        self._stage = stage
        self._on_poison = on_poison

    def __call__(self, error: Exception, row: Row | None, logger: logging.Logger) -> bool:
        if row is None or classify(error) is not FailureKind.DATA:
            return False
        raw = row.value if isinstance(row.value, bytes) else None
        poison = Poison(
            raw, PoisonKind.UNPROCESSABLE, describe(error, _MAX_REASON_CHARS), row.topic, row.partition, row.offset
        )
        self._on_poison(poison)
        key = row.key if isinstance(row.key, bytes) else None
        self._producer.send(poison, key, self._stage, list(row.headers or []))
        self._producer.flush()  # DeadLetterUnavailable (transient) stops the stage rather than lose the letter
        return True
