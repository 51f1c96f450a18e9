"""Quix Streams serializer and deserializer for Jobstream's Avro events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quixstreams.models.serializers import (
    Deserializer,
    SerializationContext,
    SerializationError,
    Serializer,
)

from schemas.avro import EventSchema, Record
from schemas.errors import SchemaError


class AvroEventSerializer(Serializer):
    """Writes an event with its newest schema, in single-object encoding."""

    def __init__(self, event: EventSchema) -> None:
        self._event = event

    def __call__(self, value: Mapping[str, Any], ctx: SerializationContext) -> bytes:
        try:
            return self._event.encode(value)
        except SchemaError as error:
            raise SerializationError(str(error)) from error


class AvroEventDeserializer(Deserializer):
    """Reads an event written with any committed version of its schema, as the newest version."""

    def __init__(self, event: EventSchema) -> None:
        # Deserializer.__init__ does nothing (and is untyped): not called.
        self._event = event

    def __call__(self, value: bytes, ctx: SerializationContext) -> Record:
        try:
            return self._event.decode(value)
        except SchemaError as error:
            raise SerializationError(str(error)) from error
