"""The wire contract: every Kafka topic Jobstream uses and the Avro schemas of its messages."""

from schemas.topics import TopicSpec, topic_catalog

__all__ = ["TopicSpec", "topic_catalog"]
