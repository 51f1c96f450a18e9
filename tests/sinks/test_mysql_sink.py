"""The MySQL upsert sink against a real MariaDB, in a scratch database per test."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pymysql
import pytest
from quixstreams.sinks import SinkBackpressureError
from quixstreams.sinks.base.item import SinkItem

from jobstream.backoff import Backoff
from jobstream.identities import READ_MODEL_TABLES
from jobstream.mysql import MySQLPool
from jobstream.settings import Settings
from schemas import examples
from sinks.mysql.analytics import CompanyWindowsMapping, JobWindowsMapping
from sinks.mysql.applications import DecisionsMapping
from sinks.mysql.jobs import JobsMapping
from sinks.mysql.notifications import NotificationsMapping
from sinks.mysql.sink import Mapping, MySQLUpsertSink, RetryPolicy
from sinks.mysql.stages import StagesMapping
from sinks.sre.checksum import model_checksum
from state.migrate import connect

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=3, backoff=Backoff(base_s=0.01, cap_s=0.05), backpressure_s=7)


def new_id() -> str:
    return str(uuid.uuid4())


def job_event(job_id: str, company_id: str, kind: str = "created", minute: int = 0, **fields: object) -> dict:
    job = {
        "company_id": company_id,
        "title": "Data engineer",
        "description": "Kafka and MySQL all day",
        "location": "Berlin",
        "remote": False,
        "salary_min": 50_000,
        "salary_max": 70_000,
        "currency": "EUR",
        "tags": ["python", "kafka"],
        "occurred_at": T0 + timedelta(minutes=minute),
    }
    return dict(examples.job_lifecycle(job_id, kind, **{**job, **fields}))


def decided_event(application_id: str, job_id: str, candidate_id: str, outcome: str = "accepted") -> dict:
    return dict(
        examples.application_decided(
            job_id,
            outcome,
            application_id=application_id,
            candidate_id=candidate_id,
            submitted_at=T0,
            decided_at=T0 + timedelta(seconds=1),
        )
    )


def stage_event(application_id: str, job_id: str, stage: str, minute: int) -> dict:
    return dict(
        examples.application_stage_changed(application_id, job_id, stage, changed_at=T0 + timedelta(minutes=minute))
    )


def outcome_event(notification_id: str, status: str = "sent") -> dict:
    return dict(examples.notification_outcome(notification_id, status, occurred_at=T0))


def window_event(key_name: str, key: str, applications: int = 3) -> dict:
    if key_name == "job_id":
        return dict(examples.job_window_stats(key, T0, applications))
    return dict(examples.company_window_stats(key, T0, applications))


def items(*pairs: tuple[dict, int]) -> list[SinkItem]:
    return [SinkItem(value=value, key=None, timestamp=0, headers=[], offset=offset) for value, offset in pairs]


@pytest.fixture
def pool_factory(settings: Settings, scratch_database: str) -> Iterator:
    pools: list[MySQLPool] = []

    def make(size: int = 2, lock_wait_s: int = 2) -> MySQLPool:
        pool = MySQLPool(settings.mysql, size, timeout_s=3, lock_wait_timeout_s=lock_wait_s, database=scratch_database)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def db(settings: Settings, scratch_database: str) -> Iterator[pymysql.Connection]:
    with connect(settings.mysql, scratch_database) as connection:
        yield connection


def checksum(db: pymysql.Connection) -> str:
    db.commit()
    return model_checksum(db, READ_MODEL_TABLES)


def query(db: pymysql.Connection, sql: str, args: object = None) -> tuple:
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def no_rejections(partition: int, refused: list) -> None:
    raise AssertionError(f"the sink refused valid events: {[(item.offset, error) for item, error in refused]}")


def write(pool: MySQLPool, mapping: Mapping, batch: list[SinkItem], retry: RetryPolicy = FAST) -> None:
    MySQLUpsertSink(pool, mapping, retry, rejected=no_rejections).write_items(batch)


def every_model_batch() -> list[tuple[Mapping, list[SinkItem]]]:
    job_id, company_id, app_id = new_id(), new_id(), new_id()
    return [
        (JobsMapping(), items((job_event(job_id, company_id), 10))),
        (DecisionsMapping(), items((decided_event(app_id, job_id, new_id()), 20))),
        (StagesMapping(), items((stage_event(app_id, job_id, "reviewed", 5), 30))),
        (NotificationsMapping(), items((outcome_event(new_id(), "failed"), 40))),
        (JobWindowsMapping(), items((window_event("job_id", job_id), 50))),
        (CompanyWindowsMapping(), items((window_event("company_id", company_id), 60))),
    ]


def test_a_batch_lands_as_rows_in_every_read_model(pool_factory, db):
    pool = pool_factory()
    job_id, company_id = new_id(), new_id()
    applications = [(new_id(), new_id()) for _ in range(3)]
    write(pool, JobsMapping(), items((job_event(job_id, company_id, tags=["Python", " kafka ", "python"]), 7)))
    write(
        pool,
        DecisionsMapping(),
        items(
            *(
                (decided_event(app, job_id, candidate, "accepted" if n else "rejected"), 100 + n)
                for n, (app, candidate) in enumerate(applications)
            )
        ),
    )
    write(pool, StagesMapping(), items((stage_event(applications[1][0], job_id, "reviewed", 5), 3)))
    for mapping, batch in every_model_batch()[3:]:
        write(pool, mapping, batch)

    assert query(db, "SELECT company_id, status, version FROM jobs WHERE job_id = %s", (job_id,)) == (
        (company_id, "open", 7),
    )
    assert query(db, "SELECT tag FROM job_tags WHERE job_id = %s ORDER BY tag", (job_id,)) == (("kafka",), ("python",))
    assert query(db, "SELECT status, COUNT(*) FROM applications GROUP BY status ORDER BY status") == (
        ("accepted", 2),
        ("rejected", 1),
    )
    assert query(
        db, "SELECT applications, accepted, rejected, reviewed FROM job_funnel WHERE job_id = %s", (job_id,)
    ) == ((3, 2, 1, 1),)
    assert query(db, "SELECT status, error FROM notification_log") == (("failed", "smtp 451"),)
    assert query(db, "SELECT applications, views, rejected_by_reason FROM job_window_stats") == (
        (3, 10, '{"job_full": 1}'),
    )
    assert query(db, "SELECT COUNT(*) FROM company_window_stats") == ((1,),)


def test_the_same_batches_written_twice_change_nothing(pool_factory, db):
    pool = pool_factory()
    batches = every_model_batch()
    for mapping, batch in batches:
        write(pool, mapping, batch)
    first = checksum(db)
    for mapping, batch in batches:
        write(pool, mapping, batch)
    assert checksum(db) == first
    assert query(db, "SELECT COUNT(*) FROM applications") == ((1,),)


def test_an_older_version_after_a_newer_one_changes_nothing(pool_factory, db):
    pool = pool_factory()
    job_id, company_id, app_id = new_id(), new_id(), new_id()
    write(pool, JobsMapping(), items((job_event(job_id, company_id, "closed", 9, title="Closed", tags=["late"]), 20)))
    write(pool, JobsMapping(), items((job_event(job_id, company_id, "created", 0, title="Open", tags=["early"]), 10)))
    write(pool, StagesMapping(), items((stage_event(app_id, job_id, "interview", 9), 8)))
    write(pool, StagesMapping(), items((stage_event(app_id, job_id, "reviewed", 2), 4)))

    assert query(db, "SELECT status, title, version, created_at FROM jobs") == (
        ("closed", "Closed", 20, datetime(2026, 11, 29, 9, 0)),
    )
    assert query(db, "SELECT tag FROM job_tags") == (("late",),)
    assert query(db, "SELECT stage, stage_version FROM applications") == (("interview", 8),)
    assert query(db, "SELECT stage FROM application_stage_history ORDER BY stage") == (("reviewed",), ("interview",))


def test_a_stage_before_its_decision_gives_the_same_row_as_after(pool_factory, db, settings, scratch_database):
    job_id, app_id, candidate = new_id(), new_id(), new_id()
    decision = items((decided_event(app_id, job_id, candidate), 5))
    stage = items((stage_event(app_id, job_id, "offer", 3), 2))
    pool = pool_factory()
    write(pool, StagesMapping(), stage)
    write(pool, DecisionsMapping(), decision)
    stage_first = checksum(db)
    with db.cursor() as cursor:
        for table in READ_MODEL_TABLES:
            cursor.execute(f"DELETE FROM {table}")
    db.commit()
    write(pool, DecisionsMapping(), decision)
    write(pool, StagesMapping(), stage)
    assert checksum(db) == stage_first
    assert query(db, "SELECT candidate_id, status, stage FROM applications") == ((candidate, "accepted", "offer"),)


@pytest.mark.parametrize("same_batch", [True, False])
def test_a_candidate_reapplying_after_job_unknown_keeps_the_newest_decision_whatever_the_batching(
    pool_factory, db, same_batch
):
    job_id, candidate = new_id(), new_id()
    # Both orders of application id, so the batch's primary-key sort cannot decide which one wins.
    first, second = sorted([new_id(), new_id()], reverse=same_batch)
    rejected = dict(decided_event(first, job_id, candidate, "rejected"), reason="job_unknown")
    accepted = decided_event(second, job_id, candidate)
    pool = pool_factory()
    if same_batch:
        write(pool, DecisionsMapping(), items((rejected, 10), (accepted, 11)))
    else:
        write(pool, DecisionsMapping(), items((rejected, 10)))
        write(pool, DecisionsMapping(), items((accepted, 11)))
    assert query(db, "SELECT application_id, status, rejection_reason FROM applications") == (
        (second, "accepted", None),
    )


def test_concurrent_writers_with_overlapping_keys_in_opposite_order_never_deadlock(pool_factory, db):
    # One attempt only: a deadlock would surface as SinkBackpressureError instead of being retried away.
    once = RetryPolicy(max_attempts=1, backoff=Backoff(base_s=0.01, cap_s=0.01), backpressure_s=1)
    pool = pool_factory(size=2)
    job_id = new_id()
    rows = [(decided_event(new_id(), job_id, new_id()), n) for n in range(300)]
    errors: list[BaseException] = []

    def writer(batch: list[SinkItem]) -> None:
        try:
            for _ in range(5):
                write(pool, DecisionsMapping(), batch, once)
        except BaseException as error:
            errors.append(error)

    forward, backward = items(*rows), items(*reversed(rows))
    threads = [threading.Thread(target=writer, args=(batch,)) for batch in (forward, backward)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert query(db, "SELECT COUNT(*) FROM applications") == ((300,),)


def test_the_pool_never_opens_more_connections_than_its_cap(pool_factory, settings, scratch_database):
    cap = 2
    pool = pool_factory(size=cap)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        with connect(settings.mysql, scratch_database) as watcher, watcher.cursor() as cursor:
            while not stop.is_set():
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                    " WHERE USER = %s AND DB = %s AND ID <> CONNECTION_ID()",
                    (settings.mysql.user, scratch_database),
                )
                seen.append(cursor.fetchone()[0])
                time.sleep(0.005)

    def writer() -> None:
        for _ in range(4):
            job_id = new_id()
            write(
                pool, DecisionsMapping(), items(*((decided_event(new_id(), job_id, new_id()), n) for n in range(200)))
            )

    watcher = threading.Thread(target=watch)
    watcher.start()
    writers = [threading.Thread(target=writer) for _ in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    stop.set()
    watcher.join()
    assert max(seen) == cap


def test_an_unreachable_mysql_raises_backpressure_with_retry_after(settings, scratch_database):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    address = type(settings.mysql)(**{**settings.mysql.__dict__, "port": closed_port})
    pool = MySQLPool(address, 2, timeout_s=1, lock_wait_timeout_s=1, database=scratch_database)
    started = time.monotonic()
    with pytest.raises(SinkBackpressureError) as raised:
        write(pool, JobsMapping(), items((job_event(new_id(), new_id()), 1)))
    assert raised.value.retry_after == FAST.backpressure_s
    assert isinstance(raised.value.__cause__, pymysql.OperationalError)
    assert time.monotonic() - started < 5


def test_a_lock_wait_timeout_is_retried_until_the_lock_is_released(pool_factory, db, settings, scratch_database):
    job_id, company_id = new_id(), new_id()
    pool = pool_factory()
    write(pool, JobsMapping(), items((job_event(job_id, company_id), 1)))
    with connect(settings.mysql, scratch_database) as holder, holder.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT * FROM jobs WHERE job_id = %s FOR UPDATE", (job_id,))
        releaser = threading.Timer(2.5, holder.rollback)
        releaser.start()
        patient = RetryPolicy(max_attempts=4, backoff=Backoff(base_s=0.05, cap_s=0.1), backpressure_s=1)
        write(pool, JobsMapping(), items((job_event(job_id, company_id, "closed", 1), 2)), patient)
        releaser.join()
    assert query(db, "SELECT status FROM jobs") == (("closed",),)


def test_a_lock_held_past_every_attempt_pauses_the_sink_with_backpressure(pool_factory, settings, scratch_database):
    job_id, company_id = new_id(), new_id()
    pool = pool_factory(lock_wait_s=1)
    write(pool, JobsMapping(), items((job_event(job_id, company_id), 1)))
    with connect(settings.mysql, scratch_database) as holder, holder.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT * FROM jobs WHERE job_id = %s FOR UPDATE", (job_id,))
        two = RetryPolicy(max_attempts=2, backoff=Backoff(base_s=0.01, cap_s=0.01), backpressure_s=3)
        with pytest.raises(SinkBackpressureError) as raised:
            write(pool, JobsMapping(), items((job_event(job_id, company_id, "closed", 1), 2)), two)
        holder.rollback()
    assert raised.value.retry_after == 3
    assert raised.value.__cause__.args[0] == 1205
