"""Prometheus metrics every stage process (topology or sink) exports: throughput, dead letters, recoveries and
consumer lag per partition.

Each process owns one registry and serves it over HTTP on its configured port; ``rate()`` of the message counter
is messages/s. Consumer lag comes from librdkafka's statistics callback, so measuring it costs no extra request.
The metric names keep their ``jobstream_topology_`` prefix; the ``topology`` label names the stage.

librdkafka's own `consumer_lag` counts from the offset the consumer last committed, and an exactly-once stage never
commits through its consumer (its offsets go with the producer's transaction): the consumer keeps the offset it
fetched at assignment, and its lag only ever grew. So the lag here counts from the later of that offset and the
next one the stage has yet to process.
"""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from jobstream.dead_letter import Poison, PoisonKind

logger = logging.getLogger(__name__)

# How often librdkafka reports statistics, hence how fresh the lag gauge is.
STATISTICS_INTERVAL_MS = 5_000


class StageMetrics:
    """Messages processed by input topic, dead letters by reason, recoveries and consumer lag per partition."""

    def __init__(self, registry: CollectorRegistry, topology: str) -> None:
        self.registry = registry
        self.topology = topology
        # time.monotonic() of the last statistics callback: the consumer's poll serves it, so it is the main loop's
        # heartbeat (jobstream.watchdog).
        self.polled_at = time.monotonic()
        self._messages = Counter(
            "jobstream_topology_messages",
            "Input messages processed (offsets stored), by input topic.",
            ["topology", "topic"],
            registry=registry,
        )
        self._dead_letters = Counter(
            "jobstream_topology_dead_letters",
            "Poison messages copied to the dead_letter topic, by source topic and kind.",
            ["topology", "topic", "kind"],
            registry=registry,
        )
        self._lag = Gauge(
            "jobstream_topology_consumer_lag",
            "Messages between the high watermark and the consumer position, per assigned partition.",
            ["topology", "topic", "partition"],
            registry=registry,
        )
        self._recoveries = Counter(
            "jobstream_topology_recoveries",
            "Times the stage's Application was rebuilt after a transient failure, by error type.",
            ["topology", "error"],
            registry=registry,
        )
        self._lag_labels: set[tuple[str, str]] = set()
        self._topics: set[str] = set()
        # The next offset to process, by topic and partition (the callbacks all run on the stage's polling thread).
        self._positions: dict[tuple[str, int], int] = {}

    def message_processed(self, topic: str, partition: int, offset: int) -> None:
        """Quix's `on_message_processed` callback."""
        self._messages.labels(self.topology, topic).inc()
        self._positions[(topic, partition)] = offset + 1
        if topic not in self._topics:
            # Dead letters start at 0 for each topic read, so the first one is an increase (for rate() and alerts),
            # not a series appearing already at 1.
            self._topics.add(topic)
            for kind in PoisonKind:
                self._dead_letters.labels(self.topology, topic, kind.value)

    def poison(self, poison: Poison) -> None:
        logger.warning(
            "dead-lettering %s[%d]@%d: %s: %s",
            poison.topic,
            poison.partition,
            poison.offset,
            poison.kind,
            poison.reason,
        )
        self._dead_letters.labels(self.topology, poison.topic, poison.kind.value).inc()

    def recovered(self, error: BaseException) -> None:
        """`jobstream.stage_runner.run_stage`'s `on_recovery` callback."""
        self._recoveries.labels(self.topology, type(error).__name__).inc()

    def statistics(self, stats_json: str) -> None:
        """librdkafka's `stats_cb`: refresh the lag of each partition this consumer fetches."""
        self.polled_at = time.monotonic()
        seen: set[tuple[str, str]] = set()
        for topic, topic_stats in json.loads(stats_json).get("topics", {}).items():
            for partition, stats in topic_stats.get("partitions", {}).items():
                # From its committed offset to the partition's end (-1: not this consumer's, or nothing committed).
                lag = stats.get("consumer_lag", -1)
                if partition == "-1" or lag < 0:
                    continue
                processed = self._positions.get((topic, int(partition)), -1) - stats.get("committed_offset", 0)
                self._lag.labels(self.topology, topic, partition).set(max(0, lag - max(0, processed)))
                seen.add((topic, partition))
        for topic, partition in self._lag_labels - seen:
            self._lag.remove(self.topology, topic, partition)
        self._lag_labels = seen

    def serve(self, port: int) -> None:
        """Expose the registry on http://0.0.0.0:`port`/metrics from a daemon thread; port 0 serves nothing, nor does
        a port another process holds (logged as an error)."""
        if not port:
            return
        try:
            start_http_server(port, registry=self.registry)
        except OSError as error:
            # Metrics are for watching the stage, not a reason to stop it (two processes on one host, say).
            logger.error("stage %s serves no metrics: port %d: %s", self.topology, port, error)
