"""Prometheus metrics of one gateway, on its own registry (no process-global state), and the middleware timing
every request by route template and status."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.middleware.admission import Admission
from jobstream.breaker import CircuitBreaker
from jobstream.process_metrics import process_registry

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = process_registry()
        r = self.registry
        self.latency = Histogram(
            "gateway_request_seconds",
            "Request latency by route template, method and status",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge("gateway_inflight_requests", "Requests being served now", registry=r)
        self.queued = Gauge("gateway_queued_requests", "Requests waiting for a slot to be served", registry=r)
        self.overloaded_refusals = Counter(
            "gateway_overloaded", "Requests refused with 503 overloaded, by reason", ["reason"], registry=r
        )
        self.producer_queue = Gauge(
            "gateway_producer_queue_depth", "Messages queued in the Kafka producer, not yet acknowledged", registry=r
        )
        self.deliveries = Counter(
            "gateway_kafka_deliveries", "Kafka delivery reports by topic and outcome", ["topic", "outcome"], registry=r
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "Requests refused with 429, by the identity limited", ["identity"], registry=r
        )
        self.cache_lookups = Counter(
            "gateway_cache_lookups",
            "Cache lookups by cache and result (hit, stale, miss)",
            ["cache", "result"],
            registry=r,
        )
        self.db_in_use = Gauge("gateway_mysql_connections_in_use", "MySQL connections in use", registry=r)
        self.breaker_open = Gauge(
            "gateway_breaker_open",
            "1 from the moment a dependency's circuit breaker opens until a call through it succeeds again "
            "(open or half-open), 0 while closed",
            ["dependency"],
            registry=r,
        )

    # Gauges read their source at each scrape (from the metrics server's thread): nothing to refresh by hand.
    def watch_admission(self, admission: Admission) -> None:
        self.inflight.set_function(lambda: admission.inflight)
        self.queued.set_function(lambda: admission.queued)

    def watch_producer(self, queue_depth: Callable[[], int]) -> None:
        self.producer_queue.set_function(queue_depth)

    def watch_mysql(self, in_use: Callable[[], int]) -> None:
        self.db_in_use.set_function(in_use)

    def watch_breakers(self, breakers: list[CircuitBreaker]) -> None:
        for breaker in breakers:
            self.breaker_open.labels(breaker.name).set_function(
                lambda breaker=breaker: 0.0 if breaker.state == "closed" else 1.0
            )

    def overloaded(self, reason: str) -> None:
        self.overloaded_refusals.labels(reason).inc()

    def delivered(self, topic: str, ok: bool) -> None:
        self.deliveries.labels(topic, "ok" if ok else "error").inc()

    def rejected(self, identity: str) -> None:
        self.rate_limited.labels(identity).inc()

    def cache_lookup(self, cache: str, result: str) -> None:
        self.cache_lookups.labels(cache, result).inc()


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = scope.get("route")
            # Templates, not raw paths, keep the label set bounded.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(template, scope["method"], str(status)).observe(time.perf_counter() - started)
