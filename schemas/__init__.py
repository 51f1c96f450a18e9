"""The wire contract: every Kafka topic Jobstream uses and the Avro schemas of its messages."""

from schemas.avro import EventSchema, SchemaVersion, load_event_schemas
from schemas.errors import SchemaError, UnknownWriterSchemaError
from schemas.serde import AvroEventDeserializer, AvroEventSerializer
from schemas.topics import TopicSpec, topic_catalog

__all__ = [
    "AvroEventDeserializer",
    "AvroEventSerializer",
    "EventSchema",
    "SchemaError",
    "SchemaVersion",
    "TopicSpec",
    "UnknownWriterSchemaError",
    "load_event_schemas",
    "topic_catalog",
]
