"""Wiring: the Quix Streams Applications of the MySQL and the Redis sink processes, built in one place."""

from __future__ import annotations

import redis
from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame

from jobstream.dead_letter import DeadLetterProducer, EventDecoder, route_poison
from jobstream.mysql import MySQLPool
from jobstream.quix_app import build_application
from jobstream.settings import Settings, SinkSettings
from jobstream.stage_metrics import StageMetrics
from schemas.avro import EventSchema, load_event_schemas
from schemas.topics import DEAD_LETTER, topic_catalog
from sinks.isolation import DeadLetterRejected
from sinks.metrics import SinkMetrics
from sinks.mysql.models import read_models
from sinks.mysql.sink import RETRY_REASONS as MYSQL_RETRY_REASONS
from sinks.mysql.sink import MySQLUpsertSink, RetryPolicy
from sinks.redis.plans import plans
from sinks.redis.sink import RETRY_REASONS as REDIS_RETRY_REASONS
from sinks.redis.sink import RedisReadModelSink


def mysql_pool(settings: Settings, database: str | None = None) -> MySQLPool:
    sinks = settings.sinks
    return MySQLPool(
        settings.mysql,
        sinks.mysql_pool_size,
        timeout_s=sinks.timeout_s,
        lock_wait_timeout_s=sinks.lock_wait_timeout_s,
        database=database,
    )


def build_mysql_application(
    settings: Settings, metrics: StageMetrics, sink_metrics: SinkMetrics, models: list[str] | None = None
) -> Application:
    """Every MySQL read model (or those named), each topic sunk in batches through one capped pool."""
    pool = mysql_pool(settings)
    retry = RetryPolicy.from_settings(settings.sinks)
    group = settings.sinks.mysql_group
    app = _application(settings, group, metrics)
    dead_letters = DeadLetterProducer(settings.kafka)
    chosen = read_models() if models is None else {name: read_models()[name] for name in models}
    for model in chosen.values():
        for mapping in model.mappings:
            event = _event(settings, mapping.topic)
            rejected = DeadLetterRejected(
                dead_letters, mapping.topic, event, group, settings.sinks.backpressure_s, metrics.poison
            )
            measured = sink_metrics.topic(mapping.topic, MYSQL_RETRY_REASONS)
            sink = MySQLUpsertSink(pool, mapping, retry, rejected=rejected, metrics=measured)
            _decoded(app, group, mapping.topic, event, metrics).sink(sink)
    return app


def build_redis_application(settings: Settings, metrics: StageMetrics, sink_metrics: SinkMetrics) -> Application:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.sinks.timeout_s)
    retry = RetryPolicy.from_settings(settings.sinks)
    group = settings.sinks.redis_group
    app = _application(settings, group, metrics)
    dead_letters = DeadLetterProducer(settings.kafka)
    for topic, plan in plans().items():
        event = _event(settings, topic)
        rejected = DeadLetterRejected(dead_letters, topic, event, group, settings.sinks.backpressure_s, metrics.poison)
        measured = sink_metrics.topic(topic, REDIS_RETRY_REASONS)
        _decoded(app, group, topic, event, metrics).sink(
            RedisReadModelSink(client, group, topic, plan, retry, rejected=rejected, metrics=measured)
        )
    return app


def _application(settings: Settings, group: str, metrics: StageMetrics) -> Application:
    sinks: SinkSettings = settings.sinks
    return build_application(
        settings.kafka,
        consumer_group=group,
        state_dir=settings.local_dir / "state" / group,
        metrics=metrics,
        processing_guarantee="at-least-once",
        commit_interval_s=sinks.commit_interval_ms / 1000,
        commit_every=sinks.batch_max_messages,
        session_timeout_ms=sinks.session_timeout_ms,
        # Catalog topics are created by `stack up`; a sink never invents one with Quix's defaults.
        auto_create_topics=False,
        use_changelog_topics=False,
        # Sinks only read: a paused partition must not pile up more than one batch.
        max_partition_buffer_size=sinks.batch_max_messages,
    )


def _event(settings: Settings, topic: str) -> EventSchema:
    events = {spec.name: spec.event for spec in topic_catalog(settings.topic_replication_factor)}
    event = events.get(topic)
    if event is None:
        raise KeyError(f"{topic} is not an Avro topic of the catalog (schemas/topics.py)")
    return load_event_schemas()[event]


def _decoded(app: Application, group: str, topic: str, event: EventSchema, metrics: StageMetrics) -> StreamingDataFrame:
    """`topic`'s records, decoded in the dataframe: what no schema reads goes to ``dead_letter`` with its reason."""
    raw = app.dataframe(app.topic(topic, key_deserializer="bytes", value_deserializer="bytes"))
    dead_letters = app.topic(DEAD_LETTER, key_serializer="bytes", value_serializer="bytes")
    decoded = raw.apply(EventDecoder({topic: event}, None), metadata=True)
    return route_poison(decoded, dead_letters, group, metrics.poison).apply(lambda value: value.record)
