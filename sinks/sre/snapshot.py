"""`python -m sinks.sre.snapshot`: write every MySQL read model, rebuilt from its topics, to `readmodel.snapshot`.

Replay starts from the latest snapshot, so retention may delete the events before it (`schemas.topics.REPLAYABLE_MS`)
and a rebuild stays complete forever. Run it daily (the Kubernetes CronJob `snapshot`). It builds the models as a
replay does, in shadow tables from the previous snapshot and the events after it, never touching the live tables;
writes their rows, then the manifest that completes the snapshot, then tombstones for the rows of earlier snapshots,
which compaction then removes. Exit status 1, with the reason, when a source was truncated or a write failed; the
previous snapshot then stays the latest.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from jobstream.clock import epoch_ms, from_epoch_ms, utc_now
from jobstream.settings import Settings
from schemas.topics import READ_MODEL_SNAPSHOT
from sinks.app import mysql_pool
from sinks.mysql.models import ReadModel, read_models
from sinks.sre.replay import SHADOW, ReplayError, build_shadows, ddl_connections, drop_shadows, replay_consumer
from sinks.sre.snapshot_store import Manifest, Offsets, SnapshotError, read_manifest, write_snapshot


@dataclass(frozen=True)
class SnapshotResult:
    manifest: Manifest
    # Events read on top of the previous snapshot (all of them when there was none).
    events: int
    checksum: str
    sources: tuple[str, ...]
    tombstoned: int
    seconds: float


def take_snapshot(
    settings: Settings,
    *,
    models: Sequence[ReadModel] | None = None,
    database: str | None = None,
    topic: str = READ_MODEL_SNAPSHOT,
    sources: dict[str, str] | None = None,
    until: Offsets | None = None,
    progress: bool = True,
) -> SnapshotResult:
    """Snapshot `models` (default: every read model) up to `until` (default: the high watermarks now) into `topic`.

    `sources` reads catalog topics from other topics holding the same events, as in `sinks.sre.replay.replay`.
    """
    started = time.monotonic()
    # In the milliseconds the manifest keeps.
    taken_at = from_epoch_ms(epoch_ms(utc_now()))
    snapshot_id = f"{taken_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    pool = mysql_pool(settings, database)
    ddl = ddl_connections(settings, database)
    consumer = replay_consumer(settings)
    try:
        stale: set[bytes] = set()
        read_manifest(consumer, topic, live_row_keys=stale)
        build = build_shadows(
            settings,
            list(models) if models is not None else list(read_models().values()),
            pool,
            ddl,
            consumer,
            until=until,
            progress=progress,
            sources=sources or {},
            snapshots=topic,
        )
        try:
            manifest = write_snapshot(
                settings.kafka, topic, pool, build.tables, SHADOW, snapshot_id, taken_at, build.ends, stale
            )
        finally:
            drop_shadows(ddl, build.tables)
        return SnapshotResult(
            manifest, build.events, build.checksum, build.sources, len(stale), time.monotonic() - started
        )
    finally:
        consumer.close()
        pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sinks.sre.snapshot", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    try:
        result = take_snapshot(Settings.from_env(identity="replay"))
    except (ReplayError, SnapshotError) as error:
        sys.exit(f"snapshot refused: {error}")
    rows = sum(table.rows for table in result.manifest.tables.values())
    print("read: " + "; ".join(result.sources))
    print(
        f"wrote {result.manifest.describe()}: {rows} rows of {len(result.manifest.tables)} tables, "
        f"{result.events} events on top of the previous snapshot, in {result.seconds:.1f}s"
    )
    print(f"tombstoned {result.tombstoned} rows of earlier snapshots")
    print(f"checksum (sha256 of rows in primary-key order): {result.checksum}")


if __name__ == "__main__":
    main()
