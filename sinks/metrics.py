"""Prometheus metrics of the read-model sinks: what each batch cost, and when a store pushed back.

They share the process's registry with `jobstream.stage_metrics.StageMetrics` (messages, dead letters, consumer lag),
which serves it. Labels are the store (``mysql`` or ``redis``) and the topic, both known when a sink is built, so
every series starts at 0: the first pause or retry is an increase that rate() and the alert rules see.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# One batch is one topic partition between two checkpoints, at most JOBSTREAM_SINKS_BATCH_MAX_MESSAGES (5,000).
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000)
# A flush includes its retries' backoff, and a pause ends it only after JOBSTREAM_SINKS_MAX_ATTEMPTS attempts.
_FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class SinkMetrics:
    """The metric families of one sink process; `topic(name)` gives one sink's view of them."""

    def __init__(self, registry: CollectorRegistry, store: str) -> None:
        self.store = store
        self.batch_size = Histogram(
            "jobstream_sink_batch_size",
            "Events in each batch handed to the store, by topic.",
            ["store", "topic"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "jobstream_sink_flush_seconds",
            "Time to write one batch, retries included, whether it landed or paused, by topic.",
            ["store", "topic"],
            buckets=_FLUSH_BUCKETS,
            registry=registry,
        )
        self.written = Counter(
            "jobstream_sink_events_written",
            "Events whose writes the store committed (a redelivered batch counts again; an event may be several rows).",
            ["store", "topic"],
            registry=registry,
        )
        self.retries = Counter(
            "jobstream_sink_retries",
            "Writes tried again after a transient store error, by topic and reason.",
            ["store", "topic", "reason"],
            registry=registry,
        )
        self.backpressure = Counter(
            "jobstream_sink_backpressure",
            "Times the sink paused its partition (the store could not take a batch), by topic.",
            ["store", "topic"],
            registry=registry,
        )

    def topic(self, topic: str, retry_reasons: tuple[str, ...]) -> TopicSinkMetrics:
        """The metrics of the sink writing `topic`, every series created at 0 (retries for each of `retry_reasons`)."""
        return TopicSinkMetrics(self, topic, retry_reasons)


class TopicSinkMetrics:
    """What one sink records: a batch's size and time, events written, retries and pauses."""

    def __init__(self, families: SinkMetrics, topic: str, retry_reasons: tuple[str, ...]) -> None:
        labels = (families.store, topic)
        self._batch_size = families.batch_size.labels(*labels)
        self._flush_seconds = families.flush_seconds.labels(*labels)
        self._written = families.written.labels(*labels)
        self._backpressure = families.backpressure.labels(*labels)
        self._retries = {reason: families.retries.labels(*labels, reason) for reason in retry_reasons}

    def batch(self, size: int, seconds: float) -> None:
        self._batch_size.observe(size)
        self._flush_seconds.observe(seconds)

    def written(self, events: int) -> None:
        self._written.inc(events)

    def retried(self, reason: str) -> None:
        self._retries[reason].inc()

    def paused(self) -> None:
        self._backpressure.inc()


def unserved(store: str, topic: str, retry_reasons: tuple[str, ...]) -> TopicSinkMetrics:
    """Metrics nobody scrapes, for a sink outside the sink processes (a replay, a benchmark, a test)."""
    return SinkMetrics(CollectorRegistry(), store).topic(topic, retry_reasons)
