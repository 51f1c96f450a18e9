"""Replay and lag against real Kafka and MariaDB: rebuilds equal what the live sink built, swapped atomically.

The catalog topics are shared with other tests, so every comparison is between two builds of the same
topic content: the offsets the live sink committed, or high watermarks captured once.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from jobstream.consumer_offsets import commit_at_end, end_offsets
from jobstream.identities import READ_MODEL_TABLES
from jobstream.settings import PROJECT_ROOT, Settings
from schemas.avro import load_event_schemas
from sinks.mysql.models import read_models
from sinks.sre.checksum import model_checksum, table_checksum
from sinks.sre.lag import group_lag
from sinks.sre.replay import high_watermarks, replay
from state.migrate import connect
from tests.e2e_harness import MYSQL_SINK_TOPICS
from tests.kafka_helpers import idempotent_producer
from tests.sinks.test_mysql_sink import (
    decided_event,
    job_event,
    new_id,
    outcome_event,
    stage_event,
    window_event,
)

SCHEMAS = load_event_schemas()
pytestmark = pytest.mark.timeout(90)


def produce(settings: Settings, topic: str, event: str, records: list[dict], key: str) -> None:
    producer = idempotent_producer(settings.kafka)
    failures: list[object] = []
    for record in records:
        producer.produce(
            topic,
            SCHEMAS[event].encode(record),
            key=record[key].encode(),
            on_delivery=lambda error, _: error and failures.append(error),
        )
    assert producer.flush(30) == 0
    assert failures == []


def scratch_settings(settings: Settings, database: str, group: str) -> Settings:
    return dataclasses.replace(
        settings,
        mysql=dataclasses.replace(settings.mysql, database=database),
        sinks=dataclasses.replace(settings.sinks, mysql_group=group, commit_interval_ms=200),
    )


def rows(settings: Settings, database: str, sql: str, args: object = None) -> tuple:
    with connect(settings.mysql, database) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def checksum(settings: Settings, database: str) -> str:
    with connect(settings.mysql, database) as connection:
        return model_checksum(connection, READ_MODEL_TABLES)


def table_checksums(settings: Settings, database: str) -> dict[str, str]:
    with connect(settings.mysql, database) as connection:
        return {table: table_checksum(connection, table) for table in READ_MODEL_TABLES}


# 14 job lifecycle events, 60 decisions, 40 stage changes, 10 notification outcomes, 5 + 3 analytics windows.
PRODUCED_EVENTS = 132


def produce_every_model(settings: Settings, topics: dict[str, str] | None = None) -> dict[str, list[str]]:
    """PRODUCED_EVENTS events over the six topics (or the topics `topics` maps them to); the ids written, per table."""

    def to(topic: str) -> str:
        return (topics or {}).get(topic, topic)

    jobs = [(new_id(), new_id()) for _ in range(10)]
    lifecycle = [job_event(job, company) for job, company in jobs]
    lifecycle += [job_event(job, company, "closed", 5, tags=["closed"]) for job, company in jobs[:4]]
    decisions = [
        decided_event(new_id(), job, new_id(), "accepted" if n % 3 else "rejected")
        for n, (job, _) in enumerate(jobs * 6)
    ]
    stages = [stage_event(d["application_id"], d["job_id"], "reviewed", 1) for d in decisions[:30]]
    stages += [stage_event(d["application_id"], d["job_id"], "interview", 2) for d in decisions[:10]]
    produce(settings, to("job.lifecycle"), "job_lifecycle", lifecycle, "job_id")
    produce(settings, to("application.decided"), "application_decided", decisions, "job_id")
    produce(settings, to("application.stage_changed"), "application_stage_changed", stages, "job_id")
    notifications = [outcome_event(new_id(), "sent" if n % 4 else "failed") for n in range(10)]
    produce(settings, to("notification.outcome"), "notification_outcome", notifications, "recipient_id")
    job_windows = [window_event("job_id", job) for job, _ in jobs[:5]]
    produce(settings, to("analytics.job_minute"), "job_window_stats", job_windows, "job_id")
    company_windows = [window_event("company_id", company) for _, company in jobs[:3]]
    produce(settings, to("analytics.company_hour"), "company_window_stats", company_windows, "company_id")
    return {
        "jobs": [job for job, _ in jobs],
        "applications": [d["application_id"] for d in decisions],
        "notification_log": [n["notification_id"] for n in notifications],
    }


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.3)


def test_a_replay_into_wiped_tables_equals_what_the_live_sink_built(settings, scratch_database, tmp_path):
    group = f"test-sinks-mysql-{uuid.uuid4().hex[:8]}"
    # The live sink and the replay both take the events from here on, not the shared topics' whole history.
    start = {(topic, p): end for topic in MYSQL_SINK_TOPICS for p, end in end_offsets(settings.kafka, topic).items()}
    commit_at_end(settings.kafka, group, MYSQL_SINK_TOPICS)
    ours = produce_every_model(settings)
    env = {
        **os.environ,
        # Its group is not the identity's own: it reaches Kafka as the tests do.
        **settings.kafka.environment(),
        "JOBSTREAM_MYSQL_URL": settings.mysql_url.rsplit("/", 1)[0] + f"/{scratch_database}",
        "JOBSTREAM_SINKS_MYSQL_GROUP": group,
        "JOBSTREAM_SINKS_COMMIT_INTERVAL_MS": "200",
        # Quix makes a state directory even for a stateless app: keep it out of the shared .local.
        "JOBSTREAM_LOCAL_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sinks", "mysql"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def landed() -> bool:
            counts = [
                rows(settings, scratch_database, f"SELECT COUNT(*) FROM {table} WHERE {column} IN %s", (ours[table],))
                for table, column in (
                    ("jobs", "job_id"),
                    ("applications", "application_id"),
                    ("notification_log", "notification_id"),
                )
            ]
            return [count[0][0] for count in counts] == [
                len(ours[t]) for t in ("jobs", "applications", "notification_log")
            ]

        wait_for(landed, 60, "the sink process to write every event")
        wait_for(
            lambda: (
                rows(
                    settings,
                    scratch_database,
                    "SELECT COUNT(*) FROM application_stage_history WHERE application_id IN %s",
                    (ours["applications"],),
                )[0][0]
                == 40
            ),
            30,
            "the stage history",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    committed = {(row.topic, row.partition): row.committed or 0 for row in group_lag(settings.kafka, group)}
    built, built_tables = checksum(settings, scratch_database), table_checksums(settings, scratch_database)
    assert rows(
        settings,
        scratch_database,
        "SELECT COUNT(*) FROM job_tags WHERE tag = 'closed' AND job_id IN %s",
        (ours["jobs"],),
    ) == ((4,),)

    with connect(settings.mysql, scratch_database) as connection, connection.cursor() as cursor:
        for table in READ_MODEL_TABLES:
            cursor.execute(f"DELETE FROM {table}")
    assert checksum(settings, scratch_database) != built
    local = scratch_settings(settings, scratch_database, group)
    result = replay(
        local,
        list(read_models().values()),
        database=scratch_database,
        start=start,
        until=committed,
        catch_up=False,
        progress=False,
    )

    assert result.events == PRODUCED_EVENTS  # exactly this test's: the replay started where the live sink did
    assert table_checksums(settings, scratch_database) == built_tables
    assert result.checksum == built
    assert checksum(settings, scratch_database) == built


def definitions(settings: Settings, database: str) -> dict[str, str]:
    """SHOW CREATE TABLE of every read-model table, without its AUTO_INCREMENT counter."""
    found = {}
    with connect(settings.mysql, database) as connection, connection.cursor() as cursor:
        for table in READ_MODEL_TABLES:
            cursor.execute(f"SHOW CREATE TABLE {table}")
            found[table] = re.sub(r" AUTO_INCREMENT=\d+", "", cursor.fetchone()[1])
    return found


def test_a_rebuilt_table_has_every_key_of_the_table_it_replaces_though_its_secondary_keys_were_built_last(
    settings, scratch_database
):
    produce(settings, "job.lifecycle", "job_lifecycle", [job_event(new_id(), new_id()) for _ in range(20)], "job_id")
    before = definitions(settings, scratch_database)
    assert "FULLTEXT KEY `jobs_text`" in before["jobs"] and "KEY `applications_candidate`" in before["applications"]
    local = scratch_settings(settings, scratch_database, "unused")

    result = replay(local, list(read_models().values()), database=scratch_database, catch_up=False, progress=False)

    assert result.swapped
    assert definitions(settings, scratch_database) == before


def test_readers_see_the_old_model_or_the_new_one_never_a_partial_one(settings, scratch_database):
    jobs = [job_event(new_id(), new_id()) for _ in range(300)]
    produce(settings, "job.lifecycle", "job_lifecycle", jobs, "job_id")
    sentinel = new_id()
    with connect(settings.mysql, scratch_database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs (job_id, company_id, title, description, location, status, created_at, updated_at,"
            " version) VALUES (%s, %s, 'old', 'old', 'old', 'open', NOW(), NOW(), 0)",
            (sentinel, new_id()),
        )
    local = scratch_settings(settings, scratch_database, "unused")
    observed: list[tuple[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        with connect(settings.mysql, scratch_database) as reader, reader.cursor() as cursor:
            while not stop.is_set():
                cursor.execute("SELECT COUNT(*), COALESCE(SUM(job_id = %s), 0) FROM jobs", (sentinel,))
                count, old = cursor.fetchone()
                observed.append((int(count), int(old)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        result = replay(
            local, [read_models()["jobs"]], database=scratch_database, batch_size=20, catch_up=False, progress=False
        )
    finally:
        time.sleep(0.2)
        stop.set()
        reader.join(10)
    new_count = rows(settings, scratch_database, "SELECT COUNT(*) FROM jobs")[0][0]
    assert result.swapped and new_count >= 300
    assert set(observed) <= {(1, 1), (new_count, 0)}, sorted(set(observed))[:5]
    assert observed.count((1, 1)) > 3, "the reader did not overlap the rebuild"
    assert observed[-1] == (new_count, 0)


def test_a_dry_run_builds_and_drops_the_shadows_with_the_same_checksum_as_the_real_run(settings, scratch_database):
    produce(settings, "job.lifecycle", "job_lifecycle", [job_event(new_id(), new_id()) for _ in range(20)], "job_id")
    local = scratch_settings(settings, scratch_database, "unused")
    jobs_model = read_models()["jobs"]
    with connect(settings.mysql, scratch_database) as connection:
        ends = high_watermarks_of(settings, jobs_model.topics)

        dry = replay(local, [jobs_model], database=scratch_database, until=ends, dry_run=True, progress=False)
        with connection.cursor() as cursor:
            cursor.execute("SHOW TABLES LIKE '%\\_\\_%'")
            assert cursor.fetchall() == ()
            cursor.execute("SELECT COUNT(*) FROM jobs")
            assert cursor.fetchone() == (0,)
        real = replay(local, [jobs_model], database=scratch_database, until=ends, catch_up=False, progress=False)
        connection.commit()
        assert (dry.swapped, real.swapped) == (False, True)
        assert dry.checksum == real.checksum == model_checksum(connection, jobs_model.tables)
        assert dry.events == real.events >= 20


def test_since_replays_only_what_was_written_at_or_after_the_timestamp(settings, scratch_database):
    before = [job_event(new_id(), new_id()) for _ in range(5)]
    after = [job_event(new_id(), new_id()) for _ in range(5)]
    produce(settings, "job.lifecycle", "job_lifecycle", before, "job_id")
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    produce(settings, "job.lifecycle", "job_lifecycle", after, "job_id")
    local = scratch_settings(settings, scratch_database, "unused")

    replay(local, [read_models()["jobs"]], database=scratch_database, since=since, progress=False)

    present = {row[0] for row in rows(settings, scratch_database, "SELECT job_id FROM jobs")}
    assert {job["job_id"] for job in after} <= present
    assert not {job["job_id"] for job in before} & present


def test_the_replay_cli_shows_progress_and_a_checksum(settings, scratch_database):
    env = {**os.environ, "JOBSTREAM_MYSQL_URL": settings.mysql_url.rsplit("/", 1)[0] + f"/{scratch_database}"}
    done = subprocess.run(
        [sys.executable, "-m", "sinks.sre.replay", "--model", "notifications", "--dry-run"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "checksum (sha256 of rows in primary-key order): " in done.stdout
    assert "built (dry run, dropped): notification_log" in done.stdout
    assert "replay: 100%" in done.stderr and "ev/s" in done.stderr


def test_lag_is_the_high_watermark_minus_the_committed_offset(settings):
    from confluent_kafka import Consumer, TopicPartition

    group = f"test-lag-{uuid.uuid4().hex[:8]}"
    produce(settings, "notification.outcome", "notification_outcome", [outcome_event(new_id())], "recipient_id")
    high = high_watermarks_of(settings, ["notification.outcome"])
    (partition, end), *_ = [(p, e) for (_, p), e in high.items() if e > 0]
    consumer = Consumer({**settings.kafka.client_config(), "group.id": group, "log_level": 0})
    consumer.commit(offsets=[TopicPartition("notification.outcome", partition, end - 1)], asynchronous=False)
    consumer.close()

    (row,) = group_lag(settings.kafka, group)
    assert (row.topic, row.partition, row.committed) == ("notification.outcome", partition, end - 1)
    # Other tests may produce meanwhile: the lag is at least the one message left, and exactly high - committed.
    assert row.lag == row.high - row.committed >= 1
    shown = subprocess.run(
        [sys.executable, "-m", "sinks.sre.lag", "--group", group],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert group in shown.stdout and "notification.outcome" in shown.stdout and "total lag: " in shown.stdout


def high_watermarks_of(settings: Settings, topics) -> dict[tuple[str, int], int]:
    from confluent_kafka import Consumer

    consumer = Consumer({**settings.kafka.client_config(), "group.id": "unused", "log_level": 0})
    try:
        return high_watermarks(consumer, list(topics))
    finally:
        consumer.close()
