"""`python -m state.migrate` and `python -m jobstream.topic_admin`: what a deployment's one-off Jobs run."""

import os
import subprocess
import sys

from jobstream.settings import PROJECT_ROOT
from tests.e2e_harness import mysql_url


def _run(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def test_migrate_applies_every_migration_once_then_nothing(settings, scratch_database):
    # scratch_database is migrated already: a second database shows the first run.
    from benchmarks.fixtures import scratch_database as empty_database

    with empty_database(settings, prefix="jobstream_cmd") as empty:
        first = _run("state.migrate", JOBSTREAM_MYSQL_URL=mysql_url(settings.mysql, empty))
        second = _run("state.migrate", JOBSTREAM_MYSQL_URL=mysql_url(settings.mysql, empty))
    again = _run("state.migrate", JOBSTREAM_MYSQL_URL=mysql_url(settings.mysql, scratch_database))

    assert first.returncode == 0, first.stderr
    assert "0001_jobs_and_applications" in first.stdout and "applied now" in first.stdout
    assert second.returncode == again.returncode == 0
    assert "0 applied now (none)" in second.stdout and "0 applied now (none)" in again.stdout


def test_migrate_and_topics_exit_1_naming_what_is_unreachable():
    migrate = _run("state.migrate", JOBSTREAM_MYSQL_URL="mysql://jobstream:jobstream@127.0.0.1:1/jobstream")
    topics = _run("jobstream.topic_admin", JOBSTREAM_KAFKA_BOOTSTRAP="127.0.0.1:1")

    assert migrate.returncode == 1 and "migrate:" in migrate.stderr
    assert topics.returncode == 1 and "topics:" in topics.stderr


def test_topics_reconciles_the_catalog_and_a_second_run_changes_nothing():
    first = _run("jobstream.topic_admin")
    second = _run("jobstream.topic_admin")

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert second.stdout.strip().endswith("topics: 0 changes")
