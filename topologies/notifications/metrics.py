"""Delivery metrics of the notification topology, by channel.

They share the process's registry with ``jobstream.stage_metrics.StageMetrics`` (messages, dead letters, consumer
lag per partition), which serves it over HTTP.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Delivery latency runs from requested_at to the provider's acceptance: retries push it to minutes.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class NotificationMetrics:
    """Counters by channel, the delivery latency histogram and the retry count, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.delivered = Counter(
            "jobstream_notifications_delivered", "Notifications a provider accepted.", ["channel"], registry=registry
        )
        self.failed_attempts = Counter(
            "jobstream_notification_attempts_failed",
            "Delivery attempts a provider refused or timed out.",
            ["channel"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "jobstream_notifications_dead_lettered",
            "Notifications given up on, sent to notification.dead_letter.",
            ["channel"],
            registry=registry,
        )
        self.retries = Counter(
            "jobstream_notification_retries",
            "Attempts after the first, in process or after a re-queue.",
            ["channel"],
            registry=registry,
        )
        self.requeued = Counter(
            "jobstream_notifications_requeued",
            "Notifications handed to the retry topic to try again later.",
            ["channel"],
            registry=registry,
        )
        self.duplicates = Counter(
            "jobstream_notification_duplicates",
            "Redelivered notifications skipped: already delivered.",
            ["channel"],
            registry=registry,
        )
        self.unknown_recipients = Counter(
            "jobstream_notification_recipients_unknown",
            "Requests the fresh stage enriched without the recipient's account in state (user.registered lags): "
            "neutral greeting, and push to the recipient's id when no address came with it.",
            registry=registry,
        )
        self.latency = Histogram(
            "jobstream_notification_delivery_latency_seconds",
            "From requested_at to delivery, by channel.",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
