"""An asyncio face on confluent-kafka's Producer: `send` resolves only once the broker acknowledged.

The producer is idempotent with acks=all, so an acknowledged event is durable and written once. A thread polls
the producer for delivery reports; each report resolves its request's Future on the event loop. A write not
acknowledged within the bound raises `ProduceUnavailable`, and librdkafka's own message timeout equals that
bound, so a write the client was told failed is, in the common case, also abandoned by the producer.
While Kafka is down, a circuit breaker answers at once instead of letting every request wait out the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from jobstream.breaker import CircuitBreaker
from jobstream.errors import DependencyUnavailable
from jobstream.partitioning import KEY_PARTITIONER
from jobstream.settings import KafkaClientSettings
from schemas import EventSchema

DeliveryHook = Callable[[str, bool], None]


class ProduceUnavailable(DependencyUnavailable):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__("kafka", message, retry_after_s)


class EventProducer:
    """Writes Avro events to Kafka topics; `start()` before use and `stop()` on shutdown."""

    def __init__(
        self,
        kafka: KafkaClientSettings,
        topic_events: Mapping[str, EventSchema],
        *,
        ack_timeout_s: float,
        retry_after_s: int,
        breaker: CircuitBreaker,
        on_delivery: DeliveryHook | None = None,
    ) -> None:
        """`breaker` must count `ProduceUnavailable` as its failure."""
        self._topic_events = dict(topic_events)
        self._ack_timeout_s = ack_timeout_s
        self._retry_after_s = retry_after_s
        self._breaker = breaker
        self._on_delivery = on_delivery or (lambda topic, ok: None)
        self._producer = Producer(
            {
                **kafka.client_config(),
                "partitioner": KEY_PARTITIONER,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": int(ack_timeout_s * 1000),
                "queue.buffering.max.messages": 100_000,
                "log_level": 0,
            }
        )
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Flush what is queued (fire-and-forget events included), then stop polling."""
        self._producer.flush(flush_timeout_s)
        self._stopping.set()
        if self._poller is not None:
            self._poller.join()

    def queue_depth(self) -> int:
        return len(self._producer)

    def reachable(self, timeout_s: float) -> bool:
        """True when a broker answers a metadata request (blocking: call it from a thread)."""
        try:
            self._producer.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        return True

    async def send(self, topic: str, key: str, record: Mapping[str, Any]) -> None:
        """Produce one event and wait for the broker's acknowledgement, at most the configured bound."""
        await self._breaker.call(lambda: self._send_acknowledged(topic, key, record))

    async def _send_acknowledged(self, topic: str, key: str, record: Mapping[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            self._on_delivery(topic, error is None)
            # The loop may be gone when a report arrives after shutdown; the request was answered long before.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, acked, error)

        self._produce(topic, key, record, delivered)
        try:
            await asyncio.wait_for(acked, self._ack_timeout_s)
        except TimeoutError:
            raise ProduceUnavailable(
                f"Kafka did not acknowledge within {self._ack_timeout_s:g} s", self._retry_after_s
            ) from None
        except KafkaException as error:
            raise ProduceUnavailable(f"Kafka refused the write: {error}", self._retry_after_s) from None

    def send_nowait(self, topic: str, key: str, record: Mapping[str, Any]) -> bool:
        """Queue one event without waiting for it; False when the local queue is full (the event is dropped)."""

        def delivered(error: KafkaError | None, message: Message) -> None:
            self._on_delivery(topic, error is None)

        try:
            self._produce(topic, key, record, delivered)
        except ProduceUnavailable:
            return False
        return True

    def _produce(self, topic: str, key: str, record: Mapping[str, Any], delivered: Callable[..., None]) -> None:
        value = self._topic_events[topic].encode(record)
        try:
            self._producer.produce(topic, value=value, key=key.encode(), on_delivery=delivered)
        except BufferError:
            raise ProduceUnavailable("the gateway's Kafka queue is full", self._retry_after_s) from None

    def _poll_forever(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(error))
