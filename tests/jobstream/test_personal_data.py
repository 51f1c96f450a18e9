"""The personal-data report (jobstream/personal_data.py) is complete and true to the schemas, tables and keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from jobstream.personal_data import EVENTS, REDIS_KEYS, TABLES, kafka_places, places
from jobstream.settings import PROJECT_ROOT
from schemas.avro import load_event_schemas
from schemas.topics import topic_catalog
from state import redis_keys

# A field or column whose name says it may hold what identifies a person (ids are pseudonymous: not listed).
LOOKS_PERSONAL = re.compile(r"email|name|address|phone|cover|resume|letter|url|params|error|payload|password|ip$")
# Matches that hold nothing personal, and why.
NOT_PERSONAL = {
    ("schema_migrations", "name"): "a migration's file name",
}
SCHEMAS = load_event_schemas()


def schema_fields(event: str) -> set[str]:
    """The top-level fields of every version of `event`'s schema."""
    return {
        field["name"] for version in SCHEMAS[event].versions for field in json.loads(version.path.read_text())["fields"]
    }


@pytest.mark.unit
@pytest.mark.parametrize("event", sorted(SCHEMAS))
def test_every_field_that_looks_personal_is_declared_and_every_declared_field_exists(event):
    looks = {name for name in schema_fields(event) if LOOKS_PERSONAL.search(name) and not name.endswith("_id")}
    declared = set(EVENTS[event].fields) if event in EVENTS else set()
    assert looks == declared
    assert declared <= schema_fields(event)


@pytest.mark.unit
def test_every_topic_carrying_a_personal_event_is_reported_with_its_retention():
    reported = {place.where: place for place in kafka_places()}
    for spec in topic_catalog(1):
        if spec.event in EVENTS:
            assert spec.name in reported, spec.name
            assert spec.retention_reason in reported[spec.name].kept
    assert "dead_letter" in reported
    assert "notification_log.error" in reported["readmodel.snapshot"].holds


@pytest.mark.unit
def test_the_redis_places_are_keys_of_the_key_catalog():
    assert {place.where for place in REDIS_KEYS} == {
        redis_keys.cached("profiles", "{user_id}"),
        redis_keys.rate_limit("{limit}"),
    }


def test_every_column_that_looks_personal_is_declared_and_every_declared_column_exists(mysql):
    with mysql.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE()")
        columns = {(table, column) for table, column in cursor.fetchall()}
    looks = {
        (table, column)
        for table, column in columns
        if LOOKS_PERSONAL.search(column) and not column.endswith("_id") and (table, column) not in NOT_PERSONAL
    }
    declared = {(table, column) for table, personal in TABLES.items() for column in personal.fields}
    assert looks == declared
    assert declared <= columns


@pytest.mark.unit
def test_the_report_command_prints_every_place_as_a_table():
    done = subprocess.run(
        [sys.executable, "-m", "jobstream.personal_data"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| kafka", "| mysql", "| redis", "| files"))]
    assert len(rows) == len(places())
    assert [row.split(" | ")[1] for row in rows] == [place.where for place in places()]
