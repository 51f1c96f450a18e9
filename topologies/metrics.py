"""Prometheus metrics of the topologies' own decisions; what every stage exports is `jobstream.stage_metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
