"""Apply the versioned SQL migrations in state/migrations/, each exactly once.

A migration is a file ``NNNN_name.sql``. Applied migrations are recorded in ``schema_migrations``
with a checksum; editing a migration after it was applied is refused, since the databases that
already ran it would silently differ from new ones. A named lock keeps concurrent runs apart.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pymysql

from jobstream.errors import JobstreamError
from jobstream.settings import MySQLAddress

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_NAME = "jobstream.schema_migrations"
_LOCK_TIMEOUT_S = 60


class MigrationError(JobstreamError):
    """The migrations on disk and those recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements; migrations keep semicolons out of literals and comments."""
        without_comments = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [statement.strip() for statement in without_comments.split(";") if statement.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        migrations.append(Migration(int(match.group(1)), path.stem, path.read_text()))
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return migrations


def connect(address: MySQLAddress, database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(
        host=address.host,
        port=address.port,
        user=address.user,
        password=address.password,
        database=database or address.database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=5,
    )


def apply_migrations(connection: pymysql.Connection, migrations: list[Migration]) -> list[Migration]:
    """Apply the migrations not applied yet, in version order. Returns those applied now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, %s)", (_LOCK_NAME, _LOCK_TIMEOUT_S))
        locked = cursor.fetchone()
        if locked != (1,):
            raise MigrationError(f"another process held the migration lock for {_LOCK_TIMEOUT_S}s")
        try:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INT NOT NULL PRIMARY KEY,"
                " name VARCHAR(200) NOT NULL,"
                " checksum CHAR(64) CHARACTER SET ascii NOT NULL,"
                " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
                ") ENGINE=InnoDB"
            )
            cursor.execute("SELECT version, checksum FROM schema_migrations")
            applied = dict(cursor.fetchall())
            pending = []
            for migration in migrations:
                recorded = applied.get(migration.version)
                if recorded is None:
                    pending.append(migration)
                elif recorded != migration.checksum:
                    raise MigrationError(f"{migration.name} changed after it was applied; add a new migration instead")
            for migration in pending:
                for statement in migration.statements():
                    cursor.execute(statement)
                cursor.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            return pending
        finally:
            cursor.execute("SELECT RELEASE_LOCK(%s)", (_LOCK_NAME,))


def main() -> int:
    """`python -m state.migrate`: apply what is pending to JOBSTREAM_MYSQL_URL's database (the deployment's Job)."""
    from jobstream.settings import Settings

    try:
        settings = Settings.from_env()
        with connect(settings.mysql) as connection:
            migrations = load_migrations()
            applied = apply_migrations(connection, migrations)
    except (JobstreamError, pymysql.MySQLError) as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 1
    latest = migrations[-1].name if migrations else "none"
    print(f"migrate: {len(applied)} applied now ({', '.join(m.name for m in applied) or 'none'}); schema at {latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
