import uuid
from pathlib import Path

import pytest

from state.migrate import MigrationError, apply_migrations, connect, load_migrations


@pytest.fixture
def scratch_database(settings, mysql):
    name = f"{settings.mysql.database}_migrations_{uuid.uuid4().hex[:8]}"
    with mysql.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        with connect(settings.mysql, database=name) as connection:
            yield connection
    finally:
        with mysql.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{name}`")


def _schema(connection) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        tables = [row[0] for row in cursor.fetchall()]
        schema = {}
        for table in tables:
            cursor.execute(f"SHOW CREATE TABLE `{table}`")
            schema[table] = cursor.fetchone()[1]
        cursor.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version")
        schema["schema_migrations rows"] = repr(cursor.fetchall())
    return schema


def test_migrations_applied_twice_are_a_no_op(scratch_database):
    migrations = load_migrations()
    assert [m.version for m in apply_migrations(scratch_database, migrations)] == [m.version for m in migrations]
    before = _schema(scratch_database)
    assert {"jobs", "applications", "job_tags", "application_stage_history", "users", "invitations"} <= before.keys()

    assert apply_migrations(scratch_database, migrations) == []
    assert _schema(scratch_database) == before


def test_a_migration_edited_after_it_was_applied_is_refused(scratch_database, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id INT PRIMARY KEY)")
    apply_migrations(scratch_database, load_migrations(tmp_path))
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id BIGINT PRIMARY KEY)")
    with pytest.raises(MigrationError, match="0001_first changed after it was applied"):
        apply_migrations(scratch_database, load_migrations(tmp_path))


@pytest.mark.unit
def test_a_misnamed_migration_file_is_refused(tmp_path: Path):
    (tmp_path / "add-table.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"NNNN_lowercase_name\.sql"):
        load_migrations(tmp_path)
