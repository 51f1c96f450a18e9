"""`StageMetrics`: consumer lag from librdkafka's statistics, counted from what the stage processed, and dead letters
that start at 0."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from jobstream.dead_letter import PoisonKind
from jobstream.stage_metrics import StageMetrics

pytestmark = pytest.mark.unit


def statistics(**partitions: dict[str, int]) -> str:
    """librdkafka's statistics JSON for topic `t`, with the partitions given (and the -1 one it always reports)."""
    return json.dumps({"topics": {"t": {"partitions": {"-1": {"consumer_lag": -1}, **partitions}}}})


def lag(metrics: StageMetrics, partition: str) -> float | None:
    return metrics.registry.get_sample_value(
        "jobstream_topology_consumer_lag", {"topology": "s", "topic": "t", "partition": partition}
    )


def test_an_exactly_once_stage_that_processed_everything_has_no_lag_though_its_consumer_never_committed():
    metrics = StageMetrics(CollectorRegistry(), "s")
    # Committed 10 at assignment, the end at 15: librdkafka says 5 whatever the stage did since.
    for offset in range(10, 15):
        metrics.message_processed("t", 0, offset)
    metrics.statistics(statistics(**{"0": {"consumer_lag": 5, "committed_offset": 10}}))
    assert lag(metrics, "0") == 0
    metrics.message_processed("t", 1, 20)  # processed up to 21 of 30 on partition 1, committed 18
    metrics.statistics(statistics(**{"1": {"consumer_lag": 12, "committed_offset": 18}}))
    assert (lag(metrics, "1"), lag(metrics, "0")) == (9, None)  # partition 0 is no longer reported: gone


def test_before_the_stage_processed_anything_the_lag_counts_from_the_committed_offset():
    metrics = StageMetrics(CollectorRegistry(), "s")
    metrics.statistics(statistics(**{"2": {"consumer_lag": 7, "committed_offset": 3}, "3": {"consumer_lag": -1}}))
    assert (lag(metrics, "2"), lag(metrics, "3")) == (7, None)


def test_dead_letters_of_a_topic_start_at_0_for_every_kind_once_the_stage_reads_it():
    metrics = StageMetrics(CollectorRegistry(), "s")
    metrics.message_processed("t", 0, 0)
    for kind in PoisonKind:
        labels = {"topology": "s", "topic": "t", "kind": kind.value}
        assert metrics.registry.get_sample_value("jobstream_topology_dead_letters_total", labels) == 0
