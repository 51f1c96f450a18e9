"""Read-model snapshots in Kafka: rows of MySQL tables at known offsets of their topics, in `readmodel.snapshot`.

A snapshot is its rows (key ``row/<snapshot id>/<table>/<primary key>``), then its manifest (key ``manifest``): the
offsets its rows were built up to, and each table's columns, row count and checksum. The topic is compacted, so it
keeps the latest manifest and, once the next snapshot has tombstoned the rows before it, only that snapshot's rows.
A snapshot without its manifest (a run that died) is never read; rows are checked against the manifest as they load.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from pymysql.cursors import SSCursor

from jobstream.errors import JobstreamError
from jobstream.mysql import MySQLPool
from jobstream.settings import KafkaClientSettings
from schemas.avro import EventSchema, Record, load_event_schemas
from schemas.records import SnapshotManifest
from sinks.sre.checksum import primary_key, table_checksum

MANIFEST_KEY = b"manifest"
_ROW_PREFIX = b"row/"
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_TIMEOUT_S = 10.0
_INSERT_ROWS = 1_000

Offsets = dict[tuple[str, int], int]


class SnapshotError(JobstreamError):
    """A snapshot cannot be read or written as its manifest says; nothing was swapped in."""


@dataclass(frozen=True)
class SnapshotTable:
    columns: tuple[str, ...]
    rows: int
    checksum: str


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    taken_at: datetime
    # Its rows hold every event before these offsets of the topics it was built from.
    offsets: Offsets
    tables: dict[str, SnapshotTable]

    def describe(self) -> str:
        rows = sum(table.rows for table in self.tables.values())
        return f"snapshot {self.snapshot_id} taken {self.taken_at.isoformat(timespec='seconds')} ({rows} rows)"


def snapshot_schema() -> EventSchema:
    return load_event_schemas()["read_model_snapshot"]


def scan(consumer: Consumer, topic: str) -> Iterator[Message]:
    """Every message of `topic` from its first offset up to the high watermarks when the scan began.

    `consumer` must report partition EOF (``enable.partition.eof``): compaction leaves gaps, so the last offset
    before a high watermark may hold no message.
    """
    metadata = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics[topic]
    if metadata.error is not None:
        raise SnapshotError(f"{topic}: {metadata.error}")
    pending: dict[int, int] = {}
    starts: list[TopicPartition] = []
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=_TIMEOUT_S)
        if low < high:
            pending[partition] = high
            starts.append(TopicPartition(topic, partition, low))
    if not pending:
        return
    consumer.incremental_assign(starts)
    try:
        while pending:
            for message in consumer.consume(num_messages=1_000, timeout=1.0):
                partition = message.partition()
                if partition not in pending:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise SnapshotError(f"{topic}[{partition}]: {error}")
                if error is None and message.offset() < pending[partition]:
                    yield message
                if message.offset() >= pending[partition] - (0 if error is not None else 1):
                    pending.pop(partition)
    finally:
        consumer.incremental_unassign([TopicPartition(topic, p) for p in metadata.partitions])


def read_manifest(consumer: Consumer, topic: str, live_row_keys: set[bytes] | None = None) -> Manifest | None:
    """The latest complete snapshot's manifest, or None; fills `live_row_keys` with every row key not tombstoned."""
    schema = snapshot_schema()
    found: Record | None = None
    for message in scan(consumer, topic):
        key = message.key() or b""
        value = message.value()
        if key == MANIFEST_KEY and value is not None:
            found = schema.decode(value)
        elif live_row_keys is not None and key.startswith(_ROW_PREFIX):
            if value is None:
                live_row_keys.discard(key)
            else:
                live_row_keys.add(key)
    if found is None:
        return None
    manifest = found["manifest"]
    return Manifest(
        snapshot_id=found["snapshot_id"],
        taken_at=manifest["taken_at"],
        offsets={(o["topic"], o["partition"]): o["offset"] for o in manifest["offsets"]},
        tables={t["name"]: SnapshotTable(tuple(t["columns"]), t["rows"], t["checksum"]) for t in manifest["tables"]},
    )


def load_rows(
    consumer: Consumer, topic: str, manifest: Manifest, pool: MySQLPool, tables: Sequence[str], suffix: str
) -> None:
    """Insert `manifest`'s rows of `tables` into ``<table><suffix>`` (empty), then check counts and checksums."""
    missing = sorted(set(tables) - set(manifest.tables))
    if missing:
        raise SnapshotError(f"{manifest.describe()} holds no rows of {missing}: rebuild those from scratch")
    schema = snapshot_schema()
    prefix = _ROW_PREFIX + manifest.snapshot_id.encode() + b"/"
    wanted = set(tables)
    pending: dict[str, list[list[Any]]] = {table: [] for table in tables}
    with pool.connection() as connection:

        def flush(table: str) -> None:
            columns = manifest.tables[table].columns
            names = ", ".join(f"`{column}`" for column in columns)
            placeholders = ", ".join(["%s"] * len(columns))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO `{table}{suffix}` ({names}) VALUES ({placeholders})", pending[table])
            connection.commit()
            pending[table] = []

        for message in scan(consumer, topic):
            if not (message.key() or b"").startswith(prefix) or message.value() is None:
                continue
            row = schema.decode(message.value())["row"]
            if row["table"] not in wanted:
                continue
            pending[row["table"]].append([_from_avro(value) for value in row["values"]])
            if len(pending[row["table"]]) >= _INSERT_ROWS:
                flush(row["table"])
        for table in tables:
            if pending[table]:
                flush(table)
        for table in tables:
            expected = manifest.tables[table]
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM `{table}{suffix}`")
                (count,) = cursor.fetchone()
            if count != expected.rows:
                raise SnapshotError(
                    f"{manifest.describe()}: {table} has {count} rows in Kafka, its manifest says {expected.rows}"
                    " (a newer snapshot compacted it away meanwhile?): run the replay again"
                )
            if table_checksum(connection, table + suffix) != expected.checksum:
                raise SnapshotError(f"{manifest.describe()}: {table}'s rows differ from the checksum in its manifest")


def write_snapshot(
    kafka: KafkaClientSettings,
    topic: str,
    pool: MySQLPool,
    tables: Sequence[str],
    suffix: str,
    snapshot_id: str,
    taken_at: datetime,
    offsets: Offsets,
    stale_keys: Collection[bytes],
) -> Manifest:
    """Write ``<table><suffix>``'s rows as snapshot `snapshot_id`, then its manifest, then tombstones of `stale_keys`.

    The manifest goes out only once every row is acknowledged, and the tombstones only once the manifest is: a
    reader finds the previous snapshot whole until this one is.
    """
    schema = snapshot_schema()
    producer = Producer(
        {
            **kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 50,
            "compression.type": "lz4",
            "log_level": 0,
        }
    )
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error)

    def send(key: bytes, value: bytes | None) -> None:
        while True:
            try:
                producer.produce(topic, value, key=key, on_delivery=delivered)
                return
            except BufferError:
                producer.poll(0.5)

    def settle(what: str) -> None:
        if producer.flush(60) != 0 or failures:
            raise SnapshotError(f"{topic}: {what} not acknowledged: {failures[:3] or 'flush timed out'}")

    manifest_tables: dict[str, SnapshotTable] = {}
    with pool.connection() as connection:
        for table in tables:
            key_columns = primary_key(connection, table + suffix)
            with connection.cursor(SSCursor) as cursor:
                cursor.execute(f"SELECT * FROM `{table}{suffix}`")
                columns = tuple(column[0] for column in cursor.description)
                key_index = [columns.index(column) for column in key_columns]
                count = 0
                for values in cursor:
                    primary = json.dumps([str(values[i]) for i in key_index], ensure_ascii=False)
                    record = {"table": table, "values": [_to_avro(value) for value in values]}
                    send(
                        _ROW_PREFIX + f"{snapshot_id}/{table}/{primary}".encode(),
                        schema.encode({"snapshot_id": snapshot_id, "row": record, "manifest": None}),
                    )
                    count += 1
            manifest_tables[table] = SnapshotTable(columns, count, table_checksum(connection, table + suffix))
    settle("rows")
    manifest = Manifest(snapshot_id, taken_at, offsets, manifest_tables)
    send(MANIFEST_KEY, schema.encode({"snapshot_id": snapshot_id, "row": None, "manifest": _manifest_record(manifest)}))
    settle("the manifest")
    for stale in stale_keys:
        send(stale, None)
    settle("tombstones")
    return manifest


def _manifest_record(manifest: Manifest) -> SnapshotManifest:
    return {
        "taken_at": manifest.taken_at,
        "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(manifest.offsets.items())],
        "tables": [
            {"name": name, "columns": list(table.columns), "rows": table.rows, "checksum": table.checksum}
            for name, table in sorted(manifest.tables.items())
        ],
    }


def _to_avro(value: Any) -> Any:
    """A column value as the snapshot row's union holds it: DATETIME as microseconds, DECIMAL as its text."""
    if isinstance(value, datetime):
        return {"micros": (value - _EPOCH) // _MICROSECOND}
    if isinstance(value, Decimal):
        return str(value)
    return value


def _from_avro(value: Any) -> Any:
    if isinstance(value, dict):
        return _EPOCH + timedelta(microseconds=value["micros"])
    return value
