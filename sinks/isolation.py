"""One event whose values a store refuses must not hold back its whole batch, nor its partition, forever.

A batch write that fails with a data error (`jobstream.failures.FailureKind.DATA`: MySQL's 1406 data too long,
1366 incorrect string value, 1264 out of range, 1292 incorrect datetime; a plan that cannot read a field) is split
in halves, each written on its own, until the failing event stands alone; that event is handed to `Rejected` (the
live sinks dead-letter it, replay counts it) and every other event is written, in offset order. The writes are
idempotent upserts, so halves already written by an attempt that a later transient error interrupted are simply
written again. Transient errors propagate (backpressure), as does anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from quixstreams.sinks import SinkBackpressureError
from quixstreams.sinks.base.item import SinkItem

from jobstream.dead_letter import DeadLetterProducer, DeadLetterUnavailable, Poison, PoisonKind
from jobstream.failures import FailureKind, classify, describe
from schemas.avro import EventSchema


class Rejected(Protocol):
    """Told of each event a store refused for its values, with the partition it came from and the error."""

    def __call__(self, partition: int, item: SinkItem, error: BaseException) -> None: ...


def write_isolating(
    items: Sequence[SinkItem], partition: int, write: Callable[[Sequence[SinkItem]], None], rejected: Rejected
) -> None:
    """`write(items)`, or, on a data error, every item but the refused ones (each passed to `rejected`)."""
    if not items:
        return
    try:
        write(items)
    except Exception as error:
        if classify(error) is not FailureKind.DATA:
            raise
        if len(items) == 1:
            rejected(partition, items[0], error)
            return
        middle = len(items) // 2
        write_isolating(items[:middle], partition, write, rejected)
        write_isolating(items[middle:], partition, write, rejected)


class DeadLetterRejected:
    """The live sinks' `Rejected`: the event, re-encoded with its topic's newest schema, goes to ``dead_letter``."""

    def __init__(
        self, producer: DeadLetterProducer, topic: str, event: EventSchema, stage: str, backpressure_s: float
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._event = event
        self._stage = stage
        self._backpressure_s = backpressure_s

    def __call__(self, partition: int, item: SinkItem, error: BaseException) -> None:
        poison = Poison(
            self._event.encode(item.value),
            PoisonKind.UNPROCESSABLE,
            describe(error),
            self._topic,
            partition,
            item.offset,
        )
        key = item.key.encode() if isinstance(item.key, str) else item.key
        try:
            self._producer.send(poison, key, self._stage, list(item.headers or []))
        except DeadLetterUnavailable as unavailable:
            # Kafka cannot take the letter now: pause and write the batch again later, the letter included.
            raise SinkBackpressureError(retry_after=self._backpressure_s) from unavailable
