"""Every index of the read models serves a query the readers run: EXPLAIN shows the index chosen.

One scratch database is filled with a few thousand rows of plausible shape and analyzed, so the optimizer
decides on statistics as it would in production rather than scanning tiny tables.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pymysql
import pytest

from gateway.clients.readmodels import (
    APPLICATION_DETAIL_SQL,
    STAGE_HISTORY_SQL,
    USER_NAMES_SQL,
    company_jobs_sql,
    job_applicants_sql,
)
from jobstream.settings import Settings
from state.migrate import apply_migrations, connect, load_migrations

T0 = datetime(2026, 11, 1)
TABLES = (
    "jobs",
    "job_tags",
    "applications",
    "application_stage_history",
    "job_funnel",
    "job_window_stats",
    "company_window_stats",
    "notification_log",
)


def _id(prefix: str, n: int) -> str:
    return f"{prefix}{n:07d}-0000-0000-0000-{n:012d}"


COMPANY = _id("c", 7)
# Application 42 is job 42's, by candidate 42 (see _fill).
JOB, CANDIDATE, APPLICATION, RECIPIENT = _id("j", 42), _id("u", 42), _id("a", 5), _id("u", 21)

# (what the query is for, SQL, {table alias: the index EXPLAIN must show})
QUERIES = [
    (
        "job search: open jobs in a city above a salary, newest first",
        "SELECT job_id, title FROM jobs WHERE status = 'open' AND location = 'Lyon' AND salary_min >= 60000"
        " ORDER BY created_at DESC LIMIT 20",
        {"jobs": "jobs_search"},
    ),
    (
        "an employer's open jobs",
        f"SELECT job_id FROM jobs WHERE company_id = '{COMPANY}' AND status = 'open' ORDER BY created_at DESC",
        {"jobs": "jobs_company"},
    ),
    (
        "full-text job search",
        "SELECT job_id FROM jobs WHERE MATCH (title, description) AGAINST ('kafka' IN NATURAL LANGUAGE MODE)",
        {"jobs": "jobs_text"},
    ),
    ("jobs with a tag", "SELECT job_id FROM job_tags WHERE tag = 'rust'", {"job_tags": "PRIMARY"}),
    ("a job's tags", f"SELECT tag FROM job_tags WHERE job_id = '{JOB}'", {"job_tags": "job_tags_job"}),
    (
        "has this candidate applied to this job",
        f"SELECT application_id FROM applications WHERE job_id = '{JOB}' AND candidate_id = '{CANDIDATE}'",
        {"applications": "applications_job_candidate"},
    ),
    (
        "a candidate's applications, newest first",
        f"SELECT application_id, status FROM applications WHERE candidate_id = '{CANDIDATE}'"
        " ORDER BY submitted_at DESC",
        {"applications": "applications_candidate"},
    ),
    (
        "an employer's pipeline for one job and stage",
        f"SELECT application_id FROM applications WHERE job_id = '{JOB}' AND stage = 'interview' ORDER BY submitted_at",
        {"applications": "applications_job_stage"},
    ),
    (
        "rejection reasons platform-wide over a week",
        "SELECT rejection_reason, COUNT(*) FROM applications WHERE status = 'rejected'"
        " AND decided_at >= '2026-11-20' GROUP BY rejection_reason",
        {"applications": "applications_decisions"},
    ),
    (
        "one job's rejection reasons",
        f"SELECT rejection_reason, COUNT(*) FROM applications WHERE job_id = '{JOB}' AND status = 'rejected'"
        " GROUP BY rejection_reason",
        {"applications": "applications_job_status"},
    ),
    (
        "an application's stage history",
        f"SELECT stage, changed_at FROM application_stage_history WHERE application_id = '{APPLICATION}'",
        {"application_stage_history": "PRIMARY"},
    ),
    (
        "a company's funnel: its jobs, then each job's funnel row",
        "SELECT SUM(f.applications), SUM(f.accepted), SUM(f.interview), SUM(f.hired)"
        f" FROM jobs j JOIN job_funnel f ON f.job_id = j.job_id WHERE j.company_id = '{COMPANY}'",
        {"j": "jobs_company", "f": "PRIMARY"},
    ),
    (
        "one job's applications per minute over an hour",
        f"SELECT window_start, applications FROM job_window_stats WHERE job_id = '{JOB}'"
        " AND window_start >= '2026-11-01 05:00:00' ORDER BY window_start",
        {"job_window_stats": "PRIMARY"},
    ),
    (
        "a company's jobs' activity over a time range",
        "SELECT job_id, SUM(applications) FROM job_window_stats"
        f" WHERE company_id = '{COMPANY}' AND window_start >= '2026-11-01 00:01:00' GROUP BY job_id",
        {"job_window_stats": "job_window_company"},
    ),
    (
        "rejections across every job in one minute",
        "SELECT job_id, rejected_by_reason FROM job_window_stats"
        " WHERE window_start >= '2026-11-01 00:02:00' AND window_start < '2026-11-01 00:03:00' AND rejected > 0",
        {"job_window_stats": "job_window_time"},
    ),
    (
        "one company's hourly funnel over a day",
        f"SELECT window_start, views, applications FROM company_window_stats WHERE company_id = '{COMPANY}'"
        " AND window_start BETWEEN '2026-11-01' AND '2026-11-02'",
        {"company_window_stats": "PRIMARY"},
    ),
    (
        "the busiest companies in one window",
        "SELECT company_id, applications FROM company_window_stats WHERE window_start = '2026-11-01 06:00:00'"
        " ORDER BY applications DESC LIMIT 10",
        {"company_window_stats": "company_window_busiest"},
    ),
    (
        "a user's notifications, newest first",
        f"SELECT notification_id, status FROM notification_log WHERE recipient_id = '{RECIPIENT}'"
        " ORDER BY occurred_at DESC LIMIT 50",
        {"notification_log": "notification_log_recipient"},
    ),
    (
        "failed deliveries per channel over a day",
        "SELECT channel, COUNT(*) FROM notification_log WHERE status = 'failed'"
        " AND occurred_at >= '2026-11-01 20:00:00' GROUP BY channel",
        {"notification_log": "notification_log_status"},
    ),
]


def _fill(cursor: pymysql.cursors.Cursor) -> None:
    rng = random.Random(7)
    cities = ["Berlin", "Paris", "Lyon", "Madrid", "Rome", "Oslo", "Vienna", "Prague", "Porto", "Zurich"]
    words = ["python", "kafka", "mysql", "redis", "rust", "go", "java", "sql", "cloud", "data"]
    jobs = []
    for n in range(3000):
        jobs.append(
            (
                _id("j", n),
                _id("c", n % 150),
                f"{rng.choice(words)} engineer",
                " ".join(rng.choices(words, k=12)),
                rng.choice(cities),
                rng.randint(30, 90) * 1000,
                "open" if n % 5 else "closed",
                T0 + timedelta(minutes=n),
            )
        )
    cursor.executemany(
        "INSERT INTO jobs (job_id, company_id, title, description, location, salary_min, status, created_at,"
        " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '2026-11-01', 0)",
        jobs,
    )
    cursor.executemany(
        "INSERT IGNORE INTO job_tags (tag, job_id) VALUES (%s, %s)",
        [(rng.choice(words), job[0]) for job in jobs for _ in range(3)],
    )
    cursor.executemany(
        "INSERT INTO users (user_id, email, password_hash, role, display_name, created_at, updated_at)"
        " VALUES (%s, %s, 'x', 'candidate', %s, '2026-11-01', '2026-11-01')",
        [(_id("u", n), f"u{n}@example.test", f"User {n}") for n in range(4000)],
    )
    stages = ["submitted", "reviewed", "interview", "offer", "hired", "declined"]
    applications, history = [], []
    for n in range(12000):
        status = rng.choice(["accepted", "accepted", "accepted", "rejected"])
        submitted = T0 + timedelta(minutes=n * 3)
        applications.append(
            (
                _id("a", n),
                _id("j", n % 3000),
                _id("u", n % 4000),
                status,
                rng.choice(["job_closed", "job_full", "past_deadline"]) if status == "rejected" else None,
                rng.choice(stages),
                submitted,
                submitted + timedelta(seconds=2),
            )
        )
        history.append((_id("a", n), "reviewed", submitted))
    cursor.executemany(
        "INSERT INTO applications (application_id, job_id, candidate_id, status, rejection_reason, stage, submitted_at,"
        " decided_at, updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '2026-11-01', 0)",
        applications,
    )
    cursor.executemany(
        "INSERT INTO application_stage_history (application_id, stage, changed_at) VALUES (%s, %s, %s)", history
    )
    cursor.executemany("INSERT INTO job_funnel (job_id, applications) VALUES (%s, 4)", [(job[0],) for job in jobs])
    job_windows = [
        (_id("j", n % 3000), _id("c", n % 150), T0 + timedelta(minutes=n // 3000), rng.randint(0, 9))
        for n in range(9000)
    ]
    cursor.executemany(
        "INSERT IGNORE INTO job_window_stats (job_id, company_id, window_start, window_end, applications, accepted,"
        " rejected, rejected_by_reason, views, version) VALUES (%s, %s, %s, %s, %s, 0, 0, '{}', 0, 0)",
        [(job, company, start, start + timedelta(minutes=1), count) for job, company, start, count in job_windows],
    )
    cursor.executemany(
        "INSERT INTO company_window_stats (company_id, window_start, window_end, applications, accepted, rejected,"
        " rejected_by_reason, views, version) VALUES (%s, %s, %s, %s, 0, 0, '{}', 0, 0)",
        [
            (_id("c", c), T0 + timedelta(minutes=5 * w), T0 + timedelta(minutes=5 * w + 60), rng.randint(0, 99))
            for c in range(150)
            for w in range(60)
        ],
    )
    cursor.executemany(
        "INSERT INTO notification_log (notification_id, recipient_id, channel, status, attempts, latency_ms,"
        " occurred_at, version) VALUES (%s, %s, %s, %s, 1, 100, %s, 0)",
        [
            (
                uuid.UUID(int=n).hex,
                _id("u", n % 4000),
                rng.choice(["email", "sms", "push"]),
                "failed" if n % 20 == 0 else "sent",
                T0 + timedelta(minutes=n),
            )
            for n in range(12000)
        ],
    )


def _analyze(cursor: pymysql.cursors.Cursor) -> None:
    for table in TABLES:
        cursor.execute(f"ANALYZE TABLE {table}")
        cursor.fetchall()


@pytest.fixture(scope="module")
def filled(settings: Settings) -> Iterator[pymysql.Connection]:
    name = f"jobstream_idx{uuid.uuid4().hex[:10]}"
    with connect(settings.mysql) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        with connect(settings.mysql, name) as connection:
            apply_migrations(connection, load_migrations())
            connection.begin()
            with connection.cursor() as cursor:
                _fill(cursor)
            connection.commit()
            with connection.cursor() as cursor:
                _analyze(cursor)
            yield connection
    finally:
        with connect(settings.mysql) as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.mark.parametrize(("purpose", "sql", "expected"), QUERIES, ids=[query[0] for query in QUERIES])
def test_explain_shows_the_index_serving_the_query(filled, purpose, sql, expected):
    with filled.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = cursor.fetchall()
    chosen = {row["table"]: row["key"] for row in plan}
    assert chosen == expected, plan


def test_every_secondary_index_of_the_read_models_has_a_query(filled):
    # Primary keys are what the sinks' upserts are keyed by; every other index must earn its write cost.
    with filled.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT table_name, index_name FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND table_name IN %s AND index_name <> 'PRIMARY'",
            (TABLES,),
        )
        indexes = {(table, index) for table, index in cursor.fetchall()}
    aliases = {"j": "jobs", "f": "job_funnel"}
    served = {(aliases.get(table, table), index) for _, _, expected in QUERIES for table, index in expected.items()}
    assert indexes - served == set()


AFTER = {"after_at": T0 + timedelta(days=3), "after_id": _id("a", 9)}
# The employer reads exactly as the gateway builds them (gateway.clients.readmodels), with their parameters.
GATEWAY_READS = [
    (
        "an employer's jobs of one status, next page",
        company_jobs_sql(status=True, after=True),
        {"company_id": COMPANY, "status": "open", "limit": 20, **AFTER},
        {"j": "jobs_company", "f": "PRIMARY"},
    ),
    (
        "a job's applicants at one stage, oldest first, next page",
        job_applicants_sql(stage=True, status=False, newest_first=False, after=True),
        {"job_id": JOB, "stage": "interview", "status": None, "limit": 20, **AFTER},
        {"applications": "applications_job_stage"},
    ),
    (
        "a job's rejected applicants, newest first",
        job_applicants_sql(stage=False, status=True, newest_first=True, after=False),
        {"job_id": JOB, "stage": None, "status": "rejected", "limit": 20},
        {"applications": "applications_job_status"},
    ),
    (
        "one application with its job's company",
        APPLICATION_DETAIL_SQL,
        {"application_id": APPLICATION},
        {"a": "PRIMARY", "j": "PRIMARY"},
    ),
    (
        "the display names of a page of applicants",
        USER_NAMES_SQL,
        {"user_ids": tuple(_id("u", n) for n in range(0, 400, 17))},
        {"users": "PRIMARY"},
    ),
    (
        "one application's stage history",
        STAGE_HISTORY_SQL,
        {"application_id": APPLICATION},
        {"application_stage_history": "PRIMARY"},
    ),
]


@pytest.mark.parametrize(("purpose", "sql", "params", "expected"), GATEWAY_READS, ids=[r[0] for r in GATEWAY_READS])
def test_explain_shows_the_index_serving_each_gateway_read(filled, purpose, sql, params, expected):
    with filled.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = cursor.fetchall()
    assert {row["table"]: row["key"] for row in plan} == expected, plan
