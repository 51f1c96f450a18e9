"""`python -m sinks.sre.replay`: rebuild MySQL read models from their topics, swapped in atomically.

Each table of the chosen models is rebuilt in ``<table>__shadow`` (created LIKE the table) by the very
mappings the live sink uses (job_funnel, which they derive per batch, once after the last batch), then all of
them replace the live tables in one ``RENAME TABLE``: readers see the old model or the new one, never a half-built
one. The shadows start from the latest snapshot of the models (`sinks.sre.snapshot`, in `readmodel.snapshot`), loaded
and checked against its manifest, and read each topic from the snapshot's offsets; without a snapshot, from offset 0.
When retention has deleted events a rebuild needs, it refuses and says which. With --since, it re-applies events
from `offsets_for_times` on top of a copy of the live tables. Reading is a plain consumer with `assign()`,
up to the high watermarks captured at start; it never commits offsets in any group. After the swap, a
catch-up pass re-applies what arrived during the rebuild (the live sink wrote those into the old tables).
Events the live sinks dead-letter (undecodable, or refused by MySQL for their values) are skipped the same way and
counted, so the rebuilt model equals the live one.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import pymysql
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from quixstreams.sinks.base.item import SinkItem
from tqdm import tqdm

from jobstream.errors import JobstreamError
from jobstream.mysql import MySQLPool
from jobstream.settings import Settings
from schemas.avro import EventSchema, load_event_schemas
from schemas.errors import SchemaError
from schemas.topics import DAY_MS, READ_MODEL_SNAPSHOT, topic_catalog
from sinks.app import mysql_pool
from sinks.isolation import Refused
from sinks.mysql.funnel import refresh_every_funnel
from sinks.mysql.models import ReadModel, read_models
from sinks.mysql.sink import LIVE, MySQLUpsertSink, RetryPolicy, Target
from sinks.sre.checksum import model_checksum
from sinks.sre.snapshot_store import Manifest, Offsets, SnapshotError, load_rows, read_manifest
from state.migrate import connect

# Opens a connection of its own (closed when its `with` block ends).
Connect = Callable[[], pymysql.Connection]

SHADOW = "__shadow"
# Derived from the applications and their stage history: rebuilt once after the last batch, not per batch.
FUNNEL_TABLE = "job_funnel"
OLD = "__old"
# A non-unique secondary key's line in SHOW CREATE TABLE: "  KEY `name` (`a`,`b`)," (or FULLTEXT KEY).
_SECONDARY_KEY = re.compile(r"^\s*(?P<definition>(?:FULLTEXT )?KEY `(?P<name>[^`]+)` .*?),?$")
_TIMEOUT_S = 10.0


class ReplayError(JobstreamError):
    """A replay cannot read its topics; the live tables are left as they were."""


@dataclass(frozen=True)
class ReplayResult:
    events: int
    tables: tuple[str, ...]
    # model_checksum of the rebuilt tables, taken before the swap (the catch-up may add to them after).
    checksum: str
    swapped: bool
    catch_up_events: int
    seconds: float
    # Events left out as the live sinks leave them out: undecodable, or refused by MySQL for their values.
    skipped: int = 0
    # What the rebuild read: the snapshot (or none), then each topic's events.
    sources: tuple[str, ...] = ()


class Skipped:
    """Counts the events a replay leaves out; a `sinks.isolation.Rejected` for the replay's sinks."""

    def __init__(self) -> None:
        self.count = 0
        # The writer threads count refused events, the reading thread undecodable ones.
        self._lock = threading.Lock()

    def __call__(self, partition: int, refused: Refused) -> None:
        self.add(len(refused))

    def add(self, count: int) -> None:
        with self._lock:
            self.count += count


class _Writers:
    """Writes batches on `workers` threads while the caller reads on, each partition's in offset order.

    A partition's next batch waits for its previous one; any batch's error is raised to the caller at the next write
    of its partition or at `wait`.
    """

    def __init__(self, sinks: dict[str, MySQLUpsertSink], workers: int) -> None:
        self._sinks = sinks
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="replay-writer")
        self._last: dict[tuple[str, int], Future[None]] = {}

    def write(self, tp: tuple[str, int], items: list[SinkItem]) -> None:
        previous = self._last.get(tp)
        if previous is not None:
            previous.result()
        self._last[tp] = self._executor.submit(self._sinks[tp[0]].write_batch, tp[1], items)

    def wait(self) -> None:
        for future in self._last.values():
            future.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def replay(
    settings: Settings,
    models: Sequence[ReadModel],
    *,
    database: str | None = None,
    since: datetime | None = None,
    start: Offsets | None = None,
    until: Offsets | None = None,
    dry_run: bool = False,
    catch_up: bool = True,
    batch_size: int = 2_000,
    progress: bool = True,
    sources: dict[str, str] | None = None,
    snapshots: str | None = READ_MODEL_SNAPSHOT,
) -> ReplayResult:
    """Rebuild `models` up to `until` (default: the high watermarks now). A dry run builds and drops the shadows.

    From the latest snapshot in the topic `snapshots` and the events after it, or from the first offsets when
    there is none (or `snapshots` is None); refused when retention deleted events the rebuild needs. From `since`
    (a time) or `start` (offsets, as a consumer group committed them) on top of a copy of the live tables instead.

    `sources` reads a catalog topic from another topic holding the same events (a benchmark's scratch copy):
    ``{"application.decided": "bench-..."}``; `until` then names the topics read.
    """
    started = time.monotonic()
    pool = mysql_pool(settings, database)
    ddl = ddl_connections(settings, database)
    consumer = replay_consumer(settings)
    try:
        build = build_shadows(
            settings,
            models,
            pool,
            ddl,
            consumer,
            since=since,
            start=start,
            until=until,
            batch_size=batch_size,
            progress=progress,
            sources=sources or {},
            snapshots=snapshots,
        )
        result = functools.partial(
            ReplayResult,
            build.events,
            build.tables,
            build.checksum,
            skipped=build.skipped.count,
            sources=build.sources,
        )
        if dry_run:
            drop_shadows(ddl, build.tables)
            return result(False, 0, time.monotonic() - started)
        _swap(ddl, build.tables)
        caught_up = 0
        if catch_up:
            sinks = _sinks(pool, settings, models, LIVE, build.read, build.skipped)
            latest = high_watermarks(consumer, list(build.read.values()))
            caught_up = _apply(
                consumer,
                build.decoders,
                sinks,
                build.skipped,
                build.ends,
                latest,
                batch_size,
                False,
                _workers(settings),
            )
        return result(True, caught_up, time.monotonic() - started)
    finally:
        consumer.close()
        pool.close()


def _workers(settings: Settings) -> int:
    """Writer threads: one per connection of the pool, which bounds them anyway."""
    return settings.sinks.mysql_pool_size


def ddl_connections(settings: Settings, database: str | None) -> Connect:
    """Connections for replay's own statements: DDL, the funnel rebuild, checksums, the swap.

    Not the sinks' pool, whose read timeout bounds a batch: adding a key to a table of millions of rows takes minutes.
    """
    return functools.partial(connect, settings.mysql, database)


def replay_consumer(settings: Settings) -> Consumer:
    """A plain consumer that reads what it is assigned and never commits (its group is only its identity's)."""
    return Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": "jobstream-replay",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "log_level": 0,
        }
    )


@dataclass(frozen=True)
class Build:
    """Shadow tables built up to `ends` and left in place, for a replay to swap in or a snapshot to write out."""

    tables: tuple[str, ...]
    # Each catalog topic -> the topic it was read from.
    read: dict[str, str]
    decoders: dict[str, EventSchema]
    ends: Offsets
    events: int
    checksum: str
    skipped: Skipped
    sources: tuple[str, ...]


def build_shadows(
    settings: Settings,
    models: Sequence[ReadModel],
    pool: MySQLPool,
    ddl: Connect,
    consumer: Consumer,
    *,
    since: datetime | None = None,
    start: Offsets | None = None,
    until: Offsets | None = None,
    batch_size: int = 2_000,
    progress: bool = True,
    sources: dict[str, str],
    snapshots: str | None,
) -> Build:
    """Build ``<table>__shadow`` for every table of `models` (see `replay`); on any error they are dropped."""
    tables = tuple(dict.fromkeys(table for model in models for table in model.tables))
    read = _topics_read(models, sources)
    decoders = _decoders(settings, read)
    skipped = Skipped()
    topics = list(read.values())
    ends = until if until is not None else high_watermarks(consumer, topics)
    rebuild = since is None and start is None
    manifest = read_manifest(consumer, snapshots) if rebuild and snapshots is not None else None
    if rebuild:
        starts = _complete_starts(settings, consumer, read, ends, manifest)
    else:
        starts = {**_start_offsets(consumer, ends, since), **(start or {})}
    try:
        deferred = _create_shadows(ddl, tables, copy=not rebuild)
        if manifest is not None and snapshots is not None:
            load_rows(consumer, snapshots, manifest, pool, tables, SHADOW)
        shadow_sinks = _sinks(pool, settings, models, Target(SHADOW, derive=False), read, skipped)
        events = _apply(
            consumer, decoders, shadow_sinks, skipped, starts, ends, batch_size, progress, _workers(settings)
        )
        _add_keys(ddl, deferred)
        with ddl() as connection:
            if FUNNEL_TABLE in tables:
                with connection.cursor() as cursor:
                    refresh_every_funnel(cursor, SHADOW)
                connection.commit()
            checksum = model_checksum(connection, tables, SHADOW)
    except BaseException:
        drop_shadows(ddl, tables)
        raise
    if not rebuild:
        described = ["a copy of the live tables"]
    elif manifest is not None:
        described = [manifest.describe()]
    else:
        described = ["no snapshot: every topic from its first offset"]
    for topic in topics:
        partitions = [tp for tp in ends if tp[0] == topic]
        count = sum(max(0, ends[tp] - starts.get(tp, ends[tp])) for tp in partitions)
        described.append(f"{topic}: {count} events read over {len(partitions)} partitions")
    return Build(tables, read, decoders, ends, events, checksum, skipped, tuple(described))


def _complete_starts(
    settings: Settings, consumer: Consumer, read: dict[str, str], ends: Offsets, manifest: Manifest | None
) -> Offsets:
    """Where a rebuild starts reading each partition: after the snapshot, or at offset 0. Refused if deleted."""
    specs = {spec.name: spec for spec in topic_catalog(settings.topic_replication_factor)}
    catalog_of = {source: topic for topic, source in read.items()}
    if manifest is not None:
        taken_from = {topic for topic, _ in manifest.offsets}
        uncovered = sorted(set(catalog_of) - taken_from)
        if uncovered:
            raise ReplayError(
                f"{manifest.describe()} was built from {sorted(taken_from)}, not from {uncovered}: take a new "
                "snapshot, or rebuild from scratch (--from-scratch) while those topics are whole"
            )
    starts: Offsets = {}
    for tp, end in ends.items():
        needed = manifest.offsets.get(tp, 0) if manifest is not None else 0
        if needed > end:
            raise ReplayError(f"{tp[0]}[{tp[1]}]: the snapshot is past offset {end} the replay was asked to stop at")
        low, _ = consumer.get_watermark_offsets(TopicPartition(*tp), timeout=_TIMEOUT_S)
        spec = specs[catalog_of[tp[0]]]
        if low > needed and spec.cleanup_policy == "delete":
            after = f"after {manifest.describe()}" if manifest is not None else "without a snapshot"
            raise ReplayError(
                f"{tp[0]}[{tp[1]}] begins at offset {low}, but a rebuild {after} needs it from offset {needed}: "
                f"retention deleted the events in between ({spec.name} keeps "
                f"{spec.retention_ms // DAY_MS} days: {spec.retention_reason}). Nothing was changed; take "
                "snapshots more often than that retention"
            )
        starts[tp] = max(needed, low)
    return starts


def high_watermarks(consumer: Consumer, topics: Sequence[str]) -> Offsets:
    ends: Offsets = {}
    for topic in topics:
        metadata = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics[topic]
        if metadata.error is not None:
            raise ReplayError(f"{topic}: {metadata.error}")
        for partition in metadata.partitions:
            _, ends[(topic, partition)] = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=_TIMEOUT_S
            )
    return ends


def _start_offsets(consumer: Consumer, ends: Offsets, since: datetime | None) -> Offsets:
    if since is None:
        return {tp: consumer.get_watermark_offsets(TopicPartition(*tp), timeout=_TIMEOUT_S)[0] for tp in ends}
    millis = int(since.timestamp() * 1000)
    found = consumer.offsets_for_times([TopicPartition(t, p, millis) for t, p in ends], timeout=_TIMEOUT_S)
    # -1: nothing at or after `since` in that partition.
    return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)] for tp in found}


def _topics_read(models: Sequence[ReadModel], sources: dict[str, str]) -> dict[str, str]:
    """Each catalog topic of `models` -> the topic it is read from."""
    catalog = [mapping.topic for model in models for mapping in model.mappings]
    unknown = sorted(set(sources) - set(catalog))
    if unknown:
        raise ReplayError(f"sources names topics no chosen model reads: {unknown}; valid: {sorted(catalog)}")
    return {topic: sources.get(topic, topic) for topic in catalog}


def _decoders(settings: Settings, read: dict[str, str]) -> dict[str, EventSchema]:
    """The schema of each topic read: its catalog topic's event."""
    events = {spec.name: spec.event for spec in topic_catalog(settings.topic_replication_factor)}
    schemas = load_event_schemas()
    return {source: schemas[events[topic] or ""] for topic, source in read.items()}


def _sinks(
    pool: MySQLPool,
    settings: Settings,
    models: Sequence[ReadModel],
    target: Target,
    read: dict[str, str],
    skipped: Skipped,
) -> dict[str, MySQLUpsertSink]:
    retry = RetryPolicy.from_settings(settings.sinks)
    return {
        read[m.topic]: MySQLUpsertSink(pool, m, retry, rejected=skipped, target=target)
        for model in models
        for m in model.mappings
    }


def _apply(
    consumer: Consumer,
    decoders: dict[str, EventSchema],
    sinks: dict[str, MySQLUpsertSink],
    skipped: Skipped,
    starts: Offsets,
    ends: Offsets,
    batch_size: int,
    progress: bool,
    workers: int,
) -> int:
    """Read [start, end) of every partition, writing each partition's events in batches; returns the count.

    The batches are written on `workers` threads (`_Writers`) while reading and decoding go on: upserts are
    versioned and each partition holds its own rows, so partitions need no order among themselves.
    """
    pending = {tp: end for tp, end in ends.items() if starts[tp] < end}
    if not pending:
        return 0
    buffers: dict[tuple[str, int], list[SinkItem]] = {tp: [] for tp in pending}
    total = sum(end - starts[tp] for tp, end in pending.items())
    count = 0
    writers = _Writers(sinks, workers)

    def finish(tp: tuple[str, int]) -> None:
        writers.write(tp, buffers.pop(tp))
        pending.pop(tp)
        consumer.incremental_unassign([TopicPartition(*tp)])

    consumer.incremental_assign([TopicPartition(t, p, starts[(t, p)]) for t, p in pending])
    try:
        with tqdm(total=total, unit="ev", disable=not progress, file=sys.stderr, desc="replay") as bar:
            while pending:
                for message in consumer.consume(num_messages=batch_size, timeout=1.0):
                    tp = (message.topic(), message.partition())
                    if tp not in pending:
                        continue
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            raise ReplayError(f"{tp[0]}[{tp[1]}]: {error}")
                        if message.offset() >= pending[tp]:
                            finish(tp)
                        continue
                    if message.offset() >= pending[tp]:
                        finish(tp)
                        continue
                    item = _item(decoders[tp[0]], message)
                    if item is None:
                        skipped.add(1)
                    else:
                        buffers[tp].append(item)
                    count += 1
                    bar.update(1)
                    if message.offset() >= pending[tp] - 1:
                        finish(tp)
                    elif len(buffers[tp]) >= batch_size:
                        writers.write(tp, buffers[tp])
                        buffers[tp] = []
        writers.wait()
    finally:
        writers.close()
    return count


def _item(decoder: EventSchema, message: Message) -> SinkItem | None:
    """The message as a sink item, or None when it does not decode (the live sink dead-letters it)."""
    try:
        value = decoder.decode(message.value() or b"")
    except SchemaError:
        return None
    key = message.key()
    return SinkItem(
        value=value,
        key=key.decode() if isinstance(key, bytes) else key,
        timestamp=message.timestamp()[1],
        headers=message.headers() or [],
        offset=message.offset() or 0,
    )


def _create_shadows(ddl: Connect, tables: Sequence[str], copy: bool) -> dict[str, list[str]]:
    """Empty shadows (or copies) of `tables`, without their non-unique secondary keys, which are returned.

    Each such key costs a random B-tree insert per row once the table outgrows the buffer pool; added back after the
    load (`_add_keys`), each is built once from sorted rows. Primary and unique keys stay: upserts resolve on them.
    """
    _drop(ddl, [table + suffix for table in tables for suffix in (SHADOW, OLD)])
    deferred: dict[str, list[str]] = {}
    with ddl() as connection, connection.cursor() as cursor:
        for table in tables:
            shadow = f"`{table}{SHADOW}`"
            cursor.execute(f"CREATE TABLE {shadow} LIKE `{table}`")
            cursor.execute(f"SHOW CREATE TABLE {shadow}")
            (_, definition) = cursor.fetchone() or ("", "")
            keys = [match for line in definition.splitlines() if (match := _SECONDARY_KEY.match(line))]
            deferred[table] = [key["definition"] for key in keys]
            if keys:
                cursor.execute(f"ALTER TABLE {shadow} " + ", ".join(f"DROP KEY `{key['name']}`" for key in keys))
            if copy:
                cursor.execute(f"INSERT INTO {shadow} SELECT * FROM `{table}`")
        connection.commit()
    return deferred


def _add_keys(ddl: Connect, deferred: dict[str, list[str]]) -> None:
    """Add back the keys `_create_shadows` left out, in their order: the plain ones in one pass, then each FULLTEXT."""
    with ddl() as connection, connection.cursor() as cursor:
        for table, definitions in deferred.items():
            plain = [definition for definition in definitions if not definition.startswith("FULLTEXT")]
            if plain:
                cursor.execute(f"ALTER TABLE `{table}{SHADOW}` " + ", ".join(f"ADD {d}" for d in plain))
            for definition in definitions:
                if definition.startswith("FULLTEXT"):
                    cursor.execute(f"ALTER TABLE `{table}{SHADOW}` ADD {definition}")


def _swap(ddl: Connect, tables: Sequence[str]) -> None:
    renames = ", ".join(f"`{t}` TO `{t}{OLD}`, `{t}{SHADOW}` TO `{t}`" for t in tables)
    with ddl() as connection, connection.cursor() as cursor:
        cursor.execute(f"RENAME TABLE {renames}")
    _drop(ddl, [table + OLD for table in tables])


def drop_shadows(ddl: Connect, tables: Sequence[str]) -> None:
    _drop(ddl, [table + SHADOW for table in tables])


def _drop(ddl: Connect, tables: Sequence[str]) -> None:
    with ddl() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {', '.join(f'`{table}`' for table in tables)}")


def main(argv: list[str] | None = None) -> None:
    models = read_models()
    parser = argparse.ArgumentParser(prog="python -m sinks.sre.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=[*sorted(models), "all"], help="repeatable; default all")
    parser.add_argument("--since", type=datetime.fromisoformat, help="ISO 8601 time: re-apply events from then on")
    parser.add_argument("--dry-run", action="store_true", help="build the shadow tables and report, swap nothing")
    parser.add_argument("--no-catch-up", action="store_true", help="skip re-applying events that arrived meanwhile")
    parser.add_argument("--batch-size", type=int, default=2_000, help="events per transaction (default 2000)")
    parser.add_argument(
        "--from-scratch", action="store_true", help="ignore the snapshots: read every topic from its first offset"
    )
    args = parser.parse_args(argv)
    names = sorted(models) if not args.model or "all" in args.model else args.model
    since = args.since
    if since is not None and since.tzinfo is None:
        parser.error("--since needs a time zone, e.g. 2026-01-31T12:00:00+00:00")
    try:
        result = replay(
            Settings.from_env(identity="replay"),
            [models[name] for name in names],
            since=since,
            dry_run=args.dry_run,
            catch_up=not args.no_catch_up,
            batch_size=args.batch_size,
            snapshots=None if args.from_scratch else READ_MODEL_SNAPSHOT,
        )
    except (ReplayError, SnapshotError) as error:
        sys.exit(f"replay refused: {error}")
    print("read: " + "; ".join(result.sources))
    rate = result.events / result.seconds if result.seconds else 0.0
    verb = "built (dry run, dropped)" if not result.swapped else "rebuilt and swapped in"
    print(f"{verb}: {', '.join(result.tables)} from {result.events} events in {result.seconds:.1f}s ({rate:.0f}/s)")
    if result.swapped:
        print(f"catch-up after the swap: {result.catch_up_events} events")
    if result.skipped:
        print(f"skipped, as the live sinks dead-letter them: {result.skipped} undecodable or refused events")
    print(f"checksum (sha256 of rows in primary-key order): {result.checksum}")


if __name__ == "__main__":
    main()
