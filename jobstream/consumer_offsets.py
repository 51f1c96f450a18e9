"""Committed offsets of consumer groups: start a group at the end of its topics, commit through coordinator loads.

A fresh broker creates `__consumer_offsets` on the first group request and then loads its partitions; until a
group's partition is loaded, its coordinator answers COORDINATOR_LOAD_IN_PROGRESS (or NOT_COORDINATOR while
leadership moves). Likewise a partition whose leader moves (a new topic, a broker gone) answers
NOT_LEADER_FOR_PARTITION for a moment. Those answers are transient, so calls here retry them until a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from jobstream.errors import JobstreamError
from jobstream.settings import KafkaClientSettings

T = TypeVar("T")

_TIMEOUT_S = 10.0
_COORDINATOR_WAIT_S = 60.0
_TRANSIENT = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)
_PROBE_GROUP = "jobstream.coordinator-probe"


class CoordinatorUnavailableError(JobstreamError):
    """A group coordinator or a partition leader kept answering with a transient error past the deadline."""


def end_offsets(kafka: KafkaClientSettings, topic: str, timeout_s: float = _COORDINATOR_WAIT_S) -> dict[int, int]:
    """The high watermark of every partition of `topic`, retried while a partition's leader moves."""
    consumer = Consumer({**kafka.client_config(), "group.id": _PROBE_GROUP, "log_level": 0})
    try:
        partitions = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics[topic].partitions
        return {
            p: _retrying(
                lambda p=p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=_TIMEOUT_S)[1],
                f"watermarks of {topic}[{p}]",
                timeout_s,
            )
            for p in partitions
        }
    finally:
        consumer.close()


def commit_offsets(consumer: Consumer, offsets: list[TopicPartition], timeout_s: float = _COORDINATOR_WAIT_S) -> None:
    """Commit `offsets` synchronously, retrying while the group coordinator is loading or moving."""
    _retrying(lambda: consumer.commit(offsets=offsets, asynchronous=False), "offset commit", timeout_s)


def _retrying(call: Callable[[], T], what: str, timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    delay_s = 0.1
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() not in _TRANSIENT:
                raise
            if time.monotonic() + delay_s > deadline:
                raise CoordinatorUnavailableError(f"{what} still failing after {timeout_s:.0f} s: {error}") from exc
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 2.0)


def commit_at_end(kafka: KafkaClientSettings, group: str, topics: list[str]) -> None:
    """Give `group` committed offsets at the current end of `topics`: it will read only what comes next."""
    offsets = [
        TopicPartition(topic, partition, high)
        for topic in topics
        for partition, high in end_offsets(kafka, topic).items()
    ]
    consumer = Consumer({**kafka.client_config(), "group.id": group, "log_level": 0})
    try:
        commit_offsets(consumer, offsets)
    finally:
        consumer.close()


def wait_for_group_coordinator(kafka: KafkaClientSettings, topic: str, timeout_s: float = _COORDINATOR_WAIT_S) -> None:
    """Commit a probe group's offsets on `topic` until the coordinator takes it (creating `__consumer_offsets`)."""
    consumer = Consumer({**kafka.client_config(), "group.id": _PROBE_GROUP, "log_level": 0})
    try:
        commit_offsets(consumer, [TopicPartition(topic, 0, 0)], timeout_s)
    finally:
        consumer.close()
