"""Prometheus metrics of the outbox relay: how far behind the outbox is, what it published and what failed.

The age of the oldest unsent row is the one number that says whether `user.registered` reaches Kafka (and so the
names in emails): rows pile up unsent whether Kafka refuses them, the producer is stuck or no relay holds the lock.
Every series exists from the start, at 0, so the first failure is an increase that rate() and alerts see.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = logging.getLogger("gateway.outbox_relay")

# Why a round ended early: MySQL (reading or marking rows) or Kafka (a produce refused, a fatal producer error).
CAUSES = ("mysql", "kafka")


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._oldest_age = Gauge(
            "jobstream_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox row not yet published, at the start of the relay's last round (0: none unsent).",
            registry=registry,
        )
        self._lock_held = Gauge(
            "jobstream_outbox_lock_held", "1 while this relay holds the relay lock and publishes", registry=registry
        )
        self._published = Counter(
            "jobstream_outbox_published",
            "Outbox rows the broker acknowledged and the relay marked sent",
            registry=registry,
        )
        self._unacknowledged = Counter(
            "jobstream_outbox_unacknowledged",
            "Outbox rows produced but not acknowledged within the delivery timeout (left unsent, tried again)",
            registry=registry,
        )
        self._round_failures = Counter(
            "jobstream_outbox_round_failures", "Relay rounds that failed, by cause", ["cause"], registry=registry
        )
        for cause in CAUSES:
            self._round_failures.labels(cause)

    def found(self, oldest_age_s: float) -> None:
        """A round began: the age of the oldest row it found unsent (0 for none)."""
        self._oldest_age.set(oldest_age_s)

    def sent(self, published: int, unacknowledged: int) -> None:
        """A round's rows: those acknowledged and marked sent, and those left unsent for the next round."""
        self._published.inc(published)
        self._unacknowledged.inc(unacknowledged)

    def lock(self, held: bool) -> None:
        self._lock_held.set(1 if held else 0)

    def failed(self, cause: str) -> None:
        self._round_failures.labels(cause).inc()

    def serve(self, port: int) -> None:
        """Serve the registry on every interface at `port`, as the stages do (`StageMetrics.serve`); port 0 serves
        nothing, and a port taken is logged, not fatal: the relay's work matters more than watching it."""
        if not port:
            return
        try:
            start_http_server(port, registry=self.registry)
        except OSError as error:
            log.error("the outbox relay serves no metrics: port %d: %s", port, error)
