"""Prometheus metrics of the analytics windows; what every stage exports is `jobstream.stage_metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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
