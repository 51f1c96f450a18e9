"""Scenario 3, sink efficiency: the batched MySQL upsert sink (`sinks.mysql.sink.MySQLUpsertSink` with the
application.decided mapping) over the same sink fed one row per transaction, on the same decided events, each in
its own scratch database with every migration applied.

The row-at-a-time pass is bounded in time and reports the rows it managed; both rates are rows/s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quixstreams.sinks.base.item import SinkItem

from benchmarks.fixtures import scratch_database
from benchmarks.report import Table, ratio
from jobstream.mysql import MySQLPool
from jobstream.settings import Settings
from sinks.isolation import Refused
from sinks.mysql.applications import DecisionsMapping
from sinks.mysql.sink import MySQLUpsertSink, RetryPolicy
from state.migrate import connect

_POOL_TIMEOUT_S = 30
_LOCK_WAIT_S = 5


@dataclass(frozen=True)
class SinkPlan:
    rows: int
    jobs: int
    batch_sizes: tuple[int, ...]
    single_row_budget_s: float

    @classmethod
    def for_mode(cls, quick: bool, batch_max: int) -> SinkPlan:
        if quick:
            return cls(rows=1_000, jobs=20, batch_sizes=(500,), single_row_budget_s=2)
        return cls(rows=50_000, jobs=500, batch_sizes=tuple(sorted({500, batch_max})), single_row_budget_s=30)


def decided_items(rows: int, jobs: int) -> list[SinkItem]:
    """`rows` application.decided events over `jobs` jobs, as the sink receives them (offsets increasing)."""
    job_ids = [str(uuid.uuid4()) for _ in range(jobs)]
    start = datetime.now(UTC) - timedelta(hours=1)
    items = []
    for offset in range(rows):
        accepted = offset % 4 != 0
        value = {
            "event_id": str(uuid.uuid4()),
            "application_id": str(uuid.uuid4()),
            "job_id": job_ids[offset % jobs],
            "candidate_id": str(uuid.uuid4()),
            "company_id": None,
            "outcome": "accepted" if accepted else "rejected",
            "reason": None if accepted else "job_full",
            "submitted_at": start + timedelta(milliseconds=offset),
            "decided_at": start + timedelta(milliseconds=offset + 50),
        }
        items.append(SinkItem(value=value, key=None, timestamp=0, headers=[], offset=offset))
    return items


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    plan = SinkPlan.for_mode(quick, settings.sinks.batch_max_messages)
    items = decided_items(plan.rows, plan.jobs)
    retry = RetryPolicy.from_settings(settings.sinks)
    batched: dict[int, float] = {}
    for size in plan.batch_sizes:
        with scratch_database(settings, migrated=True) as database:
            batched[size] = _rows_per_second(settings, database, retry, items, size, budget_s=None)[0]
    with scratch_database(settings, migrated=True) as database:
        single_rate, single_rows = _rows_per_second(settings, database, retry, items, 1, plan.single_row_budget_s)

    table = Table(f"Sink efficiency: application.decided -> applications + job_funnel, {plan.rows:,} events")
    for size, rate in batched.items():
        table.add(f"batched sink, {size} rows per transaction", rate, "rows/s")
    table.add(
        f"same sink, 1 row per transaction ({single_rows:,} rows in {plan.single_row_budget_s:g} s)",
        single_rate,
        "rows/s",
    )
    for size, rate in batched.items():
        table.add(f"ratio batched ({size}) / row-at-a-time", ratio(rate, single_rate), "x")
    table.notes += [
        f"{plan.jobs} jobs; MySQLUpsertSink.write_items on a MySQLPool of 1 connection, each database fresh with every "
        "migration; each transaction also recomputes the job_funnel rows of its jobs (the sink's own work)",
        f"batch {settings.sinks.batch_max_messages} = JOBSTREAM_SINKS_BATCH_MAX_MESSAGES, the most per checkpoint",
    ]
    return table


def _refuse(partition: int, refused: Refused) -> None:
    raise RuntimeError(f"the sink refused generated events: {[(item.offset, error) for item, error in refused]}")


def _rows_per_second(
    settings: Settings,
    database: str,
    retry: RetryPolicy,
    items: Sequence[SinkItem],
    batch: int,
    budget_s: float | None,
) -> tuple[float, int]:
    pool = MySQLPool(settings.mysql, 1, timeout_s=_POOL_TIMEOUT_S, lock_wait_timeout_s=_LOCK_WAIT_S, database=database)
    sink = MySQLUpsertSink(pool, DecisionsMapping(), retry, rejected=_refuse)
    sink.setup()
    written = 0
    try:
        started = time.perf_counter()
        for start in range(0, len(items), batch):
            if budget_s is not None and time.perf_counter() - started >= budget_s:
                break
            chunk = items[start : start + batch]
            sink.write_items(chunk)
            written += len(chunk)
        elapsed = time.perf_counter() - started
    finally:
        pool.close()
    with connect(settings.mysql, database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM applications")
        (rows,) = cursor.fetchone()
    if rows != written:
        raise RuntimeError(f"the sink reported {written} rows written but the table holds {rows}")
    return written / elapsed, written
