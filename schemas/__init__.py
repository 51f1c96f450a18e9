"""The wire contract: every Kafka topic Jobstream uses and the Avro schemas of its messages.

The Quix Streams serde lives in ``schemas.serde``, imported only by the processes that run Quix.
"""

from schemas.avro import EventSchema, SchemaVersion, load_event_schemas
from schemas.errors import SchemaError, UnknownWriterSchemaError
from schemas.topics import TopicSpec, topic_catalog

__all__ = [
    "EventSchema",
    "SchemaError",
    "SchemaVersion",
    "TopicSpec",
    "UnknownWriterSchemaError",
    "load_event_schemas",
    "topic_catalog",
]
