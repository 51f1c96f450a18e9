"""Prometheus metrics of the acceptance decisions; what every stage exports is `jobstream.stage_metrics`."""

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
