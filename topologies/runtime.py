"""The Quix Streams `Application` every topology runs in, configured from its `TopologySettings`.

Exactly-once: each checkpoint (every `commit_interval_ms`) is one Kafka transaction holding the outputs, the state
changelog records and the input offsets. A new consumer group starts from the earliest offsets, so a topology
deployed late still decides every application ever produced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from uuid import uuid4

from confluent_kafka.admin import AdminClient
from quixstreams import Application
from quixstreams.models import Topic
from quixstreams.models.topics.exceptions import TopicNotFoundError

from jobstream.dead_letter import Headers
from jobstream.quix_app import build_application as build_stage_application
from jobstream.settings import KafkaClientSettings, TopologySettings
from jobstream.stage_metrics import StageMetrics
from schemas.avro import EventSchema
from schemas.serde import AvroEventSerializer
from schemas.topics import topic_catalog
from topologies.errors import MissingTopicsError

_ADMIN_TIMEOUT_S = 10.0
_FETCH_WAIT_MAX_MS = 50
PROVENANCE_HEADER = "jobstream-topology"


def build_when_topics_are_visible(build: Callable[[], Application], attempts: int = 10) -> Application:
    """Build a topology, again if Quix could not see a changelog topic it had just created.

    Quix creates each state store's changelog topic and reads it back at once; on a busy broker the new topic's
    metadata can lag that read. The topic exists by then, so building again finds it.
    """
    for attempt in range(1, attempts):
        try:
            return build()
        except TopicNotFoundError:
            logging.getLogger(__name__).warning("a new changelog topic is not visible yet; building again")
            time.sleep(0.5 * attempt)
    return build()


def require_topics(kafka: KafkaClientSettings, names: Iterable[str]) -> None:
    """Fail fast when a catalog topic is missing, rather than let Quix create it with its own defaults."""
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    existing = admin.list_topics(timeout=_ADMIN_TIMEOUT_S).topics
    missing = sorted(set(names) - set(existing))
    if missing:
        raise MissingTopicsError(missing)


def catalog_events(events: Mapping[str, EventSchema], names: Iterable[str]) -> dict[str, EventSchema]:
    """Each named topic's Avro event, as the topic catalog declares it."""
    specs = {spec.name: spec for spec in topic_catalog(replication_factor=1)}  # only names and events are read
    return {name: events[str(specs[name].event)] for name in names}


def build_application(kafka: KafkaClientSettings, topology: TopologySettings, metrics: StageMetrics) -> Application:
    """An exactly-once Application for one topology process; the caller adds dataframes and calls `run()`.

    Its transactional.id is always `<consumer group>-<instance id>`, or `<consumer group>-<random hex>` without an
    instance id, so the ACLs can grant every topology's transactions by the prefix `<consumer group>-`
    (jobstream/identities.py). Only a set instance id also makes the consumer a static group member
    (group.instance.id), and only it keeps the transactional.id stable across restarts, which fences a dead
    predecessor's open transaction.
    """
    consumer_config: dict[str, object] = {
        # Quix asks the broker for watermarks of every assigned partition and changelog while (re)balancing, on the
        # connection that long-polls fetches: each request queues behind a fetch waiting up to this long.
        "fetch.wait.max.ms": _FETCH_WAIT_MAX_MS,
    }
    instance = f"{topology.consumer_group}-{topology.instance_id or uuid4().hex}"
    producer_config: dict[str, object] = {
        "transaction.timeout.ms": topology.transaction_timeout_ms,
        "transactional.id": instance,
    }
    if topology.instance_id is not None:
        consumer_config["group.instance.id"] = instance
    return build_stage_application(
        kafka,
        consumer_group=topology.consumer_group,
        state_dir=topology.state_dir,
        metrics=metrics,
        processing_guarantee="exactly-once",
        commit_interval_s=topology.commit_interval_ms / 1000,
        session_timeout_ms=topology.session_timeout_ms,
        consumer_config=consumer_config,
        producer_config=producer_config,
    )


def provenance(headers: Headers | None, consumer_group: str) -> list[tuple[str, str | bytes]]:
    """The input's headers (trace context passes through) plus ``jobstream-topology``: which group wrote this."""
    return [*(headers or []), (PROVENANCE_HEADER, consumer_group.encode())]


def input_topic(app: Application, name: str) -> Topic:
    """A topic read as raw bytes: decoding happens in the dataframe, where failures can be dead-lettered."""
    return app.topic(name, key_deserializer="bytes", value_deserializer="bytes")


def avro_output_topic(app: Application, name: str, event: EventSchema) -> Topic:
    """A topic written with `event`'s newest Avro schema and a string key."""
    return app.topic(name, key_serializer="str", value_serializer=AvroEventSerializer(event))


def dead_letter_topic(app: Application, name: str) -> Topic:
    return app.topic(name, key_serializer="bytes", value_serializer="bytes")
