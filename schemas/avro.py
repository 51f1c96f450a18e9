"""Avro events in single-object encoding: every message names the schema that wrote it.

Layout of one message (Avro specification, "Single object encoding"):
``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian) + the Avro binary body.
Each event keeps every committed version in ``schemas/avro/<event>/v<N>.avsc``; the newest writes,
and any version decodes, resolved against the newest, so a replay of old data still reads.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from schemas.errors import SchemaError, UnknownWriterSchemaError

AVRO_DIR = Path(__file__).resolve().parent / "avro"
MAGIC = b"\xc3\x01"
_HEADER_SIZE = len(MAGIC) + 8
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")

Record = dict[str, Any]


@dataclass(frozen=True)
class SchemaVersion:
    event: str
    version: int
    path: Path
    schema: Any  # fastavro's parsed schema
    fingerprint: bytes

    @classmethod
    def load(cls, event: str, version: int, path: Path) -> SchemaVersion:
        schema = load_schema(str(path))
        canonical = to_parsing_canonical_form(schema)
        return cls(event, version, path, schema, bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")))


class EventSchema:
    """Every committed version of one event: writes with the newest, reads any of them."""

    def __init__(self, name: str, versions: list[SchemaVersion]) -> None:
        if not versions:
            raise SchemaError(f"{name}: no schema versions")
        self.name = name
        self.versions = sorted(versions, key=lambda v: v.version)
        self.latest = self.versions[-1]
        self._by_fingerprint = {v.fingerprint: v for v in self.versions}

    def encode(self, record: Mapping[str, Any]) -> bytes:
        return self.encode_with(self.latest, record)

    def encode_with(self, writer: SchemaVersion, record: Mapping[str, Any]) -> bytes:
        """Encode with a given version: for producers pinned to an older schema, and for tests."""
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(writer.fingerprint)
        try:
            fastavro.schemaless_writer(buffer, writer.schema, dict(record), strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise SchemaError(f"{self.name} v{writer.version}: cannot encode record: {error}") from error
        return buffer.getvalue()

    def writer_of(self, data: bytes) -> SchemaVersion:
        if len(data) < _HEADER_SIZE or data[:2] != MAGIC:
            raise SchemaError(f"{self.name}: not Avro single-object encoded (no C3 01 header)")
        fingerprint_bytes = data[2:_HEADER_SIZE]
        writer = self._by_fingerprint.get(fingerprint_bytes)
        if writer is None:
            raise UnknownWriterSchemaError(self.name, fingerprint_bytes)
        return writer

    def decode(self, data: bytes) -> Record:
        writer = self.writer_of(data)
        body = io.BytesIO(data[_HEADER_SIZE:])
        try:
            record = fastavro.schemaless_reader(body, writer.schema, self.latest.schema)
        except Exception as error:  # fastavro raises many types on corrupt input
            raise SchemaError(f"{self.name} v{writer.version}: corrupt body: {error!r}") from error
        if body.read(1):
            raise SchemaError(f"{self.name} v{writer.version}: trailing bytes after the record")
        if not isinstance(record, dict):
            raise SchemaError(f"{self.name} v{writer.version}: not a record but {type(record).__name__}")
        return record


def load_event_schemas(directory: Path = AVRO_DIR) -> dict[str, EventSchema]:
    """Every event under `directory`, keyed by folder name (``application_created``...)."""
    events = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        versions = []
        for path in sorted(folder.glob("*.avsc")):
            match = _VERSION_FILE.match(path.name)
            if match is None:
                raise SchemaError(f"{path}: schema files are named v<N>.avsc")
            versions.append(SchemaVersion.load(folder.name, int(match.group(1)), path))
        numbers = [v.version for v in versions]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            raise SchemaError(f"{folder.name}: versions must run v1..vN without gaps, found {sorted(numbers)}")
        events[folder.name] = EventSchema(folder.name, versions)
    return events
