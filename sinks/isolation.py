"""One event whose values a store refuses must not hold back its whole batch, nor its partition, forever.

A batch write that fails with a data error (`jobstream.failures.FailureKind.DATA`: MySQL's 1406 data too long,
1366 incorrect string value, 1264 out of range, 1292 incorrect datetime; a plan that cannot read a field) is split
in halves, each written on its own, until the failing events stand alone (event by event below 8 events). Every
other event is written, in offset order, and the refused ones are handed to `Rejected` together, once per batch
(the live sinks dead-letter them, replay counts them). The writes are idempotent upserts, so halves already
written by an attempt that a later transient error interrupted are simply written again. Transient errors
propagate (backpressure), as does anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from quixstreams.sinks import SinkBackpressureError
from quixstreams.sinks.base.item import SinkItem

from jobstream.dead_letter import DeadLetterProducer, DeadLetterUnavailable, Poison, PoisonKind
from jobstream.failures import FailureKind, classify, describe
from schemas.avro import EventSchema

Refused = list[tuple[SinkItem, BaseException]]
# Below this many events, a refused chunk is written event by event rather than halved again.
_ONE_BY_ONE = 8


class Rejected(Protocol):
    """Told, once per batch, of the events a store refused for their values, with their partition and errors."""

    def __call__(self, partition: int, refused: Refused) -> None: ...


def write_isolating(
    items: Sequence[SinkItem], partition: int, write: Callable[[Sequence[SinkItem]], None], rejected: Rejected
) -> None:
    """`write(items)`, or, on a data error, every item but the refused ones (passed to `rejected` together)."""
    refused = _write_isolating(items, write)
    if refused:
        rejected(partition, refused)


def _write_isolating(items: Sequence[SinkItem], write: Callable[[Sequence[SinkItem]], None]) -> Refused:
    if not items:
        return []
    try:
        write(items)
        return []
    except Exception as error:
        if classify(error) is not FailureKind.DATA:
            raise
        if len(items) == 1:
            return [(items[0], error)]
    if len(items) <= _ONE_BY_ONE:
        return [refused for item in items for refused in _write_isolating([item], write)]
    middle = len(items) // 2
    return _write_isolating(items[:middle], write) + _write_isolating(items[middle:], write)


class DeadLetterRejected:
    """The live sinks' `Rejected`: the event, re-encoded with its topic's newest schema, goes to ``dead_letter``."""

    def __init__(
        self,
        producer: DeadLetterProducer,
        topic: str,
        event: EventSchema,
        stage: str,
        backpressure_s: float,
        on_poison: Callable[[Poison], None],
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._event = event
        self._stage = stage
        self._backpressure_s = backpressure_s
        # Told of each letter once it is in Kafka: the stage's dead-letter count (`StageMetrics.poison`).
        self._on_poison = on_poison

    def __call__(self, partition: int, refused: Refused) -> None:
        letters = []
        for item, error in refused:
            poison = Poison(
                self._event.encode(item.value),
                PoisonKind.UNPROCESSABLE,
                describe(error),
                self._topic,
                partition,
                item.offset,
            )
            key = item.key.encode() if isinstance(item.key, str) else item.key
            self._producer.send(poison, key, self._stage, list(item.headers or []))
            letters.append(poison)
        try:
            self._producer.flush()
        except DeadLetterUnavailable as unavailable:
            # Kafka cannot take the letters now: pause and write the batch again later, the letters included.
            raise SinkBackpressureError(retry_after=self._backpressure_s) from unavailable
        for poison in letters:
            self._on_poison(poison)
