"""The analytics topology: windowed counts in event time. Run it with ``python -m topologies.analytics``.

Reads application.decided, job.viewed and job.lifecycle (co-partitioned by job_id) as one stream of facts
(`topologies.analytics.facts`), then:

- per job, 1-minute tumbling windows -> analytics.job_minute;
- per company (repartitioned by company_id), 1-hour windows hopping every 5 minutes -> analytics.company_hour.

Each window is emitted once, when it closes: when an event of the same key arrives later than its end plus the
grace period. An event that arrives after its window closed is dropped and counted in
``jobstream_analytics_late_events_dropped_total{window}``; one arriving within the grace period is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from quixstreams import Application

from jobstream.dead_letter import EventDecoder, guarded, route_poison
from jobstream.process_metrics import process_registry
from jobstream.settings import Settings
from jobstream.stage_metrics import StageMetrics
from jobstream.stage_runner import run_stage
from jobstream.watchdog import StallWatchdog
from schemas.avro import load_event_schemas
from schemas.topics import (
    ANALYTICS_COMPANY_HOUR,
    ANALYTICS_JOB_MINUTE,
    APPLICATION_DECIDED,
    DEAD_LETTER,
    JOB_LIFECYCLE,
    JOB_VIEWED,
)
from topologies.analytics.facts import (
    FactMaker,
    add_fact,
    check_fact_input,
    company_window_stats,
    first_totals,
    job_window_stats,
)
from topologies.analytics.metrics import AnalyticsMetrics
from topologies.runtime import (
    avro_output_topic,
    build_application,
    build_when_topics_are_visible,
    catalog_events,
    dead_letter_topic,
    input_topic,
    provenance,
    require_topics,
)

MINUTE_MS = 60_000


def count_late(metrics: AnalyticsMetrics, window: str) -> Callable[..., bool]:
    """A Quix `on_late` callback: count the dropped event instead of logging each one."""

    def on_late(*_: Any) -> bool:
        metrics.late_dropped.labels(window).inc()
        return False

    return on_late


def build_analytics(settings: Settings, metrics: StageMetrics, analytics: AnalyticsMetrics) -> Application:
    """Wire the analytics topology into a ready-to-run Application."""
    topology = settings.analytics.topology
    inputs = (APPLICATION_DECIDED, JOB_VIEWED, JOB_LIFECYCLE)
    require_topics(settings.kafka, [*inputs, ANALYTICS_JOB_MINUTE, ANALYTICS_COMPANY_HOUR, DEAD_LETTER])
    events = catalog_events(load_event_schemas(), [*inputs, ANALYTICS_JOB_MINUTE, ANALYTICS_COMPANY_HOUR])
    app = build_application(settings.kafka, topology, metrics)

    decided, viewed, lifecycle = (app.dataframe(input_topic(app, name)) for name in inputs)
    decoder = EventDecoder({name: events[name] for name in inputs}, key_field="job_id", validate=check_fact_input)
    decoded = decided.concat(viewed).concat(lifecycle).apply(decoder, metadata=True)
    dead_letters = dead_letter_topic(app, DEAD_LETTER)
    valid = route_poison(decoded, dead_letters, topology.consumer_group, metrics.poison)
    facts = valid.apply(guarded(FactMaker(analytics.unattributed.inc), expand=True), stateful=True, expand=True)
    facts = route_poison(facts, dead_letters, topology.consumer_group, metrics.poison)
    facts = facts.set_timestamp(lambda fact, key, timestamp, headers: fact["at"])

    def stamp(value: Any, key: Any, timestamp: int, headers: Any) -> list[tuple[str, str | bytes]]:
        # A closed window is emitted with no headers of its own.
        return provenance(None, topology.consumer_group)

    per_job = (
        facts.tumbling_window(
            MINUTE_MS,
            grace_ms=settings.analytics.job_window_grace_ms,
            name="job_minute",
            on_late=count_late(analytics, "job_minute"),
        )
        .reduce(add_fact, first_totals)
        .final()
    )
    per_job = per_job.update(lambda window: analytics.windows.labels("job_minute").inc())
    per_job.apply(job_window_stats).set_headers(stamp).to_topic(
        avro_output_topic(app, ANALYTICS_JOB_MINUTE, events[ANALYTICS_JOB_MINUTE]), key=lambda stats: stats["job_id"]
    )

    per_company = (
        facts.filter(lambda fact: fact["company_id"] is not None)
        .group_by(lambda fact: fact["company_id"], name="company_id")
        .hopping_window(
            60 * MINUTE_MS,
            step_ms=5 * MINUTE_MS,
            grace_ms=settings.analytics.company_window_grace_ms,
            name="company_hour",
            on_late=count_late(analytics, "company_hour"),
        )
        .reduce(add_fact, first_totals)
        .final()
    )
    per_company = per_company.update(lambda window: analytics.windows.labels("company_hour").inc())
    per_company.apply(company_window_stats).set_headers(stamp).to_topic(
        avro_output_topic(app, ANALYTICS_COMPANY_HOUR, events[ANALYTICS_COMPANY_HOUR]),
        key=lambda stats: stats["company_id"],
    )
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env(identity="analytics")
    registry = process_registry()
    metrics = StageMetrics(registry, "analytics")
    analytics_metrics = AnalyticsMetrics(registry)
    metrics.serve(settings.analytics.topology.metrics_port)
    run_stage(
        "analytics",
        lambda: build_when_topics_are_visible(lambda: build_analytics(settings, metrics, analytics_metrics)),
        on_recovery=metrics.recovered,
        watchdog=StallWatchdog(
            "analytics", lambda: metrics.polled_at, settings.analytics.topology.stall_timeout_ms / 1000
        ),
    )
