"""The invitation reads use the indexes migration 0006 made for them: EXPLAIN over a few thousand rows, analyzed,
so the optimizer decides on statistics rather than scanning a tiny table."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pymysql
import pytest

from gateway.accounts.invitation_store import BY_TOKEN_SQL, COMPANY_EXISTS_SQL, PENDING_SQL, hash_invite_token
from jobstream.settings import Settings
from state.migrate import apply_migrations, connect, load_migrations

T0 = datetime(2026, 11, 1)
COMPANIES = [str(uuid.UUID(int=n)) for n in range(200)]


def _fill(cursor: pymysql.cursors.Cursor) -> None:
    rows = []
    for n in range(6000):
        created = T0 + timedelta(minutes=n)
        used = created + timedelta(hours=1) if n % 3 == 0 else None
        rows.append(
            (str(uuid.uuid4()), hash_invite_token(f"token-{n}"), f"i{n}@example.com", COMPANIES[n % 200], created, used)
        )
    cursor.executemany(
        "INSERT INTO invitations (invitation_id, token_hash, email, role, company_id, created_at, expires_at,"
        " accepted_at) VALUES (%s, %s, %s, 'employer', %s, %s, '2027-01-01', %s)",
        rows,
    )
    cursor.executemany(
        "INSERT INTO users (user_id, email, password_hash, role, company_id, display_name, created_at, updated_at)"
        " VALUES (%s, %s, 'x', %s, %s, 'U', %s, %s)",
        [
            (str(uuid.uuid4()), f"u{n}@example.com", "employer" if n % 4 == 0 else "candidate",
             COMPANIES[n % 200] if n % 4 == 0 else None, T0, T0)
            for n in range(4000)
        ],
    )  # fmt: skip
    for table in ("invitations", "users"):
        cursor.execute(f"ANALYZE TABLE {table}")
        cursor.fetchall()


@pytest.fixture(scope="module")
def filled(settings: Settings) -> Iterator[pymysql.Connection]:
    name = f"jobstream_inv{os.urandom(5).hex()}"
    with connect(settings.mysql) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        with connect(settings.mysql, name) as connection:
            apply_migrations(connection, load_migrations())
            with connection.cursor() as cursor:
                _fill(cursor)
            yield connection
    finally:
        with connect(settings.mysql) as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


READS = [
    ("registration finds its invitation by token", BY_TOKEN_SQL, (hash_invite_token("token-42"),), "invitations_token"),
    (
        "a company's pending invitations, newest first",
        PENDING_SQL,
        (COMPANIES[7], T0, 20, 0),
        "invitations_company_pending",
    ),
    ("does a company exist (an employer belongs to it)", COMPANY_EXISTS_SQL, (COMPANIES[8],), "users_company"),
]


@pytest.mark.parametrize(("purpose", "sql", "params", "index"), READS, ids=[read[0] for read in READS])
def test_explain_shows_the_index_serving_each_invitation_read(filled, purpose, sql, params, index):
    with filled.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = cursor.fetchall()
    assert [row["key"] for row in plan] == [index], plan
    assert "filesort" not in (plan[0]["Extra"] or ""), plan
