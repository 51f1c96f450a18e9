"""Each typed record in schemas/records.py is its newest Avro schema, and each example event encodes with it."""

import json
import typing
import uuid
from datetime import UTC, datetime

import pytest

from schemas import examples, load_event_schemas
from schemas.records import RECORDS

pytestmark = pytest.mark.unit

EVENTS = load_event_schemas()


def _nullable(avro_type: object) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


@pytest.mark.parametrize("event", sorted(RECORDS))
def test_a_record_declares_every_field_of_its_newest_schema_and_only_those(event):
    record = RECORDS[event]
    hints = typing.get_type_hints(record)
    newest = json.loads(EVENTS[event].latest.path.read_text())
    fields = {field["name"]: field["type"] for field in newest["fields"]}
    assert set(hints) == set(fields)
    for name, avro_type in fields.items():
        optional = type(None) in typing.get_args(hints[name])
        assert optional == _nullable(avro_type), f"{event}.{name}: nullable in Avro is {_nullable(avro_type)}"


def test_every_avro_event_has_a_record():
    assert set(RECORDS) == set(EVENTS)


START = datetime(2026, 1, 1, tzinfo=UTC)
JOB = str(uuid.uuid4())
EXAMPLES = {
    "job_lifecycle": lambda: examples.job_lifecycle(JOB),
    "application_created": lambda: examples.application_created(JOB),
    "application_decided": lambda: examples.application_decided(JOB, "rejected"),
    "application_stage_changed": lambda: examples.application_stage_changed(str(uuid.uuid4()), JOB, "interview"),
    "user_registered": lambda: examples.user_registered(),
    "notification_requested": lambda: examples.notification_requested(),
    "notification_outcome": lambda: examples.notification_outcome(status="failed"),
    "job_window_stats": lambda: examples.job_window_stats(JOB, START),
    "company_window_stats": lambda: examples.company_window_stats(str(uuid.uuid4()), START),
}


@pytest.mark.parametrize("event", sorted(EXAMPLES))
def test_an_example_event_round_trips_through_its_schema(event):
    example = EXAMPLES[event]()
    schema = EVENTS[event]
    assert schema.decode(schema.encode(example)) == example
