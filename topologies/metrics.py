"""Prometheus metrics every topology process exports: throughput, dead letters and consumer lag per partition.

Each process owns one registry and serves it over HTTP on its configured port; ``rate()`` of the message counter
is messages/s. Consumer lag comes from librdkafka's statistics callback, so measuring it costs no extra request.
"""

from __future__ import annotations

import json
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from topologies.dead_letter import Poison

logger = logging.getLogger(__name__)

# How often librdkafka reports statistics, hence how fresh the lag gauge is.
STATISTICS_INTERVAL_MS = 5_000


class TopologyMetrics:
    """Messages processed by input topic, dead letters by reason and consumer lag per assigned partition."""

    def __init__(self, registry: CollectorRegistry, topology: str) -> None:
        self.registry = registry
        self.topology = topology
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
        self._lag_labels: set[tuple[str, str]] = set()

    def message_processed(self, topic: str, partition: int, offset: int) -> None:
        """Quix's `on_message_processed` callback."""
        self._messages.labels(self.topology, topic).inc()

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

    def statistics(self, stats_json: str) -> None:
        """librdkafka's `stats_cb`: refresh the lag of each partition this consumer fetches."""
        seen: set[tuple[str, str]] = set()
        for topic, topic_stats in json.loads(stats_json).get("topics", {}).items():
            for partition, stats in topic_stats.get("partitions", {}).items():
                lag = stats.get("consumer_lag", -1)
                if partition == "-1" or lag < 0:
                    continue
                self._lag.labels(self.topology, topic, partition).set(lag)
                seen.add((topic, partition))
        for topic, partition in self._lag_labels - seen:
            self._lag.remove(self.topology, topic, partition)
        self._lag_labels = seen

    def serve(self, port: int) -> None:
        """Expose the registry on http://0.0.0.0:`port`/metrics from a daemon thread; port 0 serves nothing."""
        if port:
            start_http_server(port, registry=self.registry)


class AcceptanceMetrics:
    """Decisions by outcome and reason, duplicates by the check that caught them, and how long deciding took."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "jobstream_acceptance_decisions",
            "Applications decided, by outcome and rejection reason (empty when accepted).",
            ["outcome", "reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "jobstream_acceptance_duplicates",
            "Applications given no second decision, by the check that recognised them.",
            ["kind"],
            registry=registry,
        )
        self.delay = Histogram(
            "jobstream_acceptance_decision_delay_seconds",
            "From the application's submitted_at to its decision (freshness of the acceptance path).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )


class AnalyticsMetrics:
    """Late events dropped by window (a late event may miss some hopping windows and still count in others)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.late_dropped = Counter(
            "jobstream_analytics_late_events_dropped",
            "Events that arrived after their window closed (end + grace), by window.",
            ["window"],
            registry=registry,
        )
        self.windows = Counter(
            "jobstream_analytics_windows_emitted", "Closed windows emitted, by window.", ["window"], registry=registry
        )
        self.unattributed = Counter(
            "jobstream_analytics_unattributed_events",
            "Events left out of company windows: their job's company was not known yet.",
            registry=registry,
        )
