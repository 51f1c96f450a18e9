"""The acceptance topology: decides every application exactly once. Run it with ``python -m topologies.acceptance``.

Reads job.lifecycle, application.created and application.stage_changed (co-partitioned by job_id) as one stream,
aligned by timestamp, into one RocksDB state store keyed by job_id and backed by a changelog topic; the rules are in
`topologies.acceptance.rules`. Writes application.decided and notification.requested (a decision's, and the
candidate's on each stage change: the job's title is here, in state, so no other stage needs the job); poison
messages go to dead_letter. Scale by starting more processes with the same consumer group: partitions, and the
state of their jobs (restored from the changelog), move between them.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from quixstreams import Application, State

from jobstream.clock import epoch_ms
from jobstream.dead_letter import Decoded, EventDecoder, guarded, route_poison
from jobstream.process_metrics import process_registry
from jobstream.settings import Settings
from jobstream.stage_metrics import StageMetrics
from jobstream.stage_runner import run_stage
from jobstream.watchdog import StallWatchdog
from schemas.avro import load_event_schemas
from schemas.topics import (
    APPLICATION_CREATED,
    APPLICATION_DECIDED,
    APPLICATION_STAGE_CHANGED,
    DEAD_LETTER,
    JOB_LIFECYCLE,
    NOTIFICATION_REQUESTED,
)
from topologies.acceptance.messages import KEY_FIELDS, Outbound, decision_messages, stage_messages
from topologies.acceptance.metrics import AcceptanceMetrics
from topologies.acceptance.rules import Duplicate, JobBook
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


class AcceptanceProcessor:
    """The stateful step: lifecycle events update the job; applications get their decision's messages; stage changes
    their candidate's notification."""

    def __init__(self, metrics: AcceptanceMetrics) -> None:
        self._metrics = metrics

    def __call__(self, value: Decoded, state: State[str, Any]) -> list[Outbound]:
        book = JobBook(state)
        if value.topic == JOB_LIFECYCLE:
            book.apply_lifecycle(value.record)
            return []
        if value.topic == APPLICATION_STAGE_CHANGED:
            return stage_messages(value.record, book.job())
        verdict = book.decide(value.record)
        if isinstance(verdict, Duplicate):
            self._metrics.duplicates.labels(verdict.kind.value).inc()
            return []
        now = datetime.now(UTC)
        reason = "" if verdict.reason is None else verdict.reason.value
        self._metrics.decisions.labels(verdict.outcome, reason).inc()
        self._metrics.delay.observe(max(0, epoch_ms(now) - epoch_ms(value.record["submitted_at"])) / 1000)
        return decision_messages(verdict, now)


def build_acceptance(settings: Settings, metrics: StageMetrics, decisions: AcceptanceMetrics) -> Application:
    """Wire the acceptance topology into a ready-to-run Application."""
    topology = settings.acceptance
    inputs = (JOB_LIFECYCLE, APPLICATION_CREATED, APPLICATION_STAGE_CHANGED)
    outputs = (APPLICATION_DECIDED, NOTIFICATION_REQUESTED)
    require_topics(settings.kafka, [*inputs, *outputs, DEAD_LETTER])
    events = catalog_events(load_event_schemas(), [*inputs, *outputs])
    app = build_application(settings.kafka, topology, metrics)

    jobs, applications, stages = (app.dataframe(input_topic(app, name)) for name in inputs)
    decoder = EventDecoder({name: events[name] for name in inputs}, key_field="job_id")
    decoded = jobs.concat(applications).concat(stages).apply(decoder, metadata=True)
    dead_letters = dead_letter_topic(app, DEAD_LETTER)
    valid = route_poison(decoded, dead_letters, topology.consumer_group, metrics.poison)
    outbound = valid.apply(guarded(AcceptanceProcessor(decisions), expand=True), stateful=True, expand=True)
    outbound = route_poison(outbound, dead_letters, topology.consumer_group, metrics.poison)
    outbound = outbound.set_headers(lambda value, key, timestamp, headers: provenance(headers, topology.consumer_group))
    for name in outputs:
        (
            outbound.filter(_addressed_to(name))
            .apply(lambda message: message.record)
            .to_topic(avro_output_topic(app, name, events[name]), key=operator.itemgetter(KEY_FIELDS[name]))
        )
    return app


def _addressed_to(topic: str) -> Callable[[Outbound], bool]:
    return lambda message: message.topic == topic


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env(identity="acceptance")
    registry = process_registry()
    metrics = StageMetrics(registry, "acceptance")
    acceptance_metrics = AcceptanceMetrics(registry)
    metrics.serve(settings.acceptance.metrics_port)
    run_stage(
        "acceptance",
        lambda: build_when_topics_are_visible(lambda: build_acceptance(settings, metrics, acceptance_metrics)),
        on_recovery=metrics.recovered,
        watchdog=StallWatchdog("acceptance", lambda: metrics.polled_at, settings.acceptance.stall_timeout_ms / 1000),
    )
