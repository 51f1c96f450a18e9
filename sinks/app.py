"""Wiring: the Quix Streams Applications of the MySQL and the Redis sink processes, built in one place."""

from __future__ import annotations

import redis
from quixstreams import Application
from quixstreams.models import Topic

from jobstream.settings import Settings, SinkSettings
from schemas.avro import load_event_schemas
from schemas.serde import AvroEventDeserializer
from schemas.topics import topic_catalog
from sinks.models import read_models
from sinks.mysql_pool import MySQLPool
from sinks.mysql_sink import MySQLUpsertSink, RetryPolicy
from sinks.redis_plans import plans
from sinks.redis_sink import RedisReadModelSink


def mysql_pool(settings: Settings, database: str | None = None) -> MySQLPool:
    sinks = settings.sinks
    return MySQLPool(settings.mysql, sinks.mysql_pool_size, sinks.timeout_s, sinks.lock_wait_timeout_s, database)


def build_mysql_application(settings: Settings, models: list[str] | None = None) -> Application:
    """Every MySQL read model (or those named), each topic sunk in batches through one capped pool."""
    pool = mysql_pool(settings)
    retry = RetryPolicy.from_settings(settings.sinks)
    app = _application(settings, settings.sinks.mysql_group)
    chosen = read_models() if models is None else {name: read_models()[name] for name in models}
    for model in chosen.values():
        for mapping in model.mappings:
            frame = app.dataframe(_avro_topic(app, settings, mapping.topic))
            frame.sink(MySQLUpsertSink(pool, mapping, retry))
    return app


def build_redis_application(settings: Settings) -> Application:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.sinks.timeout_s)
    retry = RetryPolicy.from_settings(settings.sinks)
    app = _application(settings, settings.sinks.redis_group)
    for topic, plan in plans().items():
        frame = app.dataframe(_avro_topic(app, settings, topic))
        frame.sink(RedisReadModelSink(client, settings.sinks.redis_group, topic, plan, retry))
    return app


def _application(settings: Settings, group: str) -> Application:
    sinks: SinkSettings = settings.sinks
    return Application(
        broker_address=settings.kafka_bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=sinks.commit_interval_ms / 1000,
        commit_every=sinks.batch_max_messages,
        # Catalog topics are created by `stack up`; a sink never invents one with Quix's defaults.
        auto_create_topics=False,
        use_changelog_topics=False,
        processing_guarantee="at-least-once",
        state_dir=settings.local_dir / "state" / group,
        # Sinks only read: a paused partition must not pile up more than one batch.
        max_partition_buffer_size=sinks.batch_max_messages,
        # Quix checks whether a checkpoint is due only between polls; with its default poll timeout of 1 s, a
        # batch that arrived just after a poll waited up to a second more before it was written.
        consumer_poll_timeout=0.05,
        consumer_extra_config={"session.timeout.ms": sinks.session_timeout_ms},
    )


def _avro_topic(app: Application, settings: Settings, name: str) -> Topic:
    events = {spec.name: spec.event for spec in topic_catalog(settings.topic_replication_factor)}
    event = events.get(name)
    if event is None:
        raise KeyError(f"{name} is not an Avro topic of the catalog (schemas/topics.py)")
    return app.topic(
        name, key_deserializer="str", value_deserializer=AvroEventDeserializer(load_event_schemas()[event])
    )
