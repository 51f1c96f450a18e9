import itertools
import uuid
from datetime import datetime

import fastavro
import pytest
from fastavro.utils import generate_many
from quixstreams.models.serializers import MessageField, SerializationContext, SerializationError

from schemas import SchemaError, UnknownWriterSchemaError
from schemas.avro import MAGIC, load_event_schemas
from schemas.compatibility import backward_problems
from schemas.serde import AvroEventDeserializer, AvroEventSerializer
from tests.kafka_helpers import consume_until, group_consumer, header, idempotent_producer

EVENTS = load_event_schemas()


def _plain(value):
    """Timestamps decode as aware datetimes, at any depth; the generator writes them as epoch milliseconds."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _parse(schema):
    return fastavro.parse_schema(schema, _write_hint=False)


@pytest.mark.unit
def test_every_event_of_the_brief_has_a_schema():
    assert set(EVENTS) >= {
        "application_created",
        "job_lifecycle",
        "application_decided",
        "application_stage_changed",
        "notification_requested",
        "notification_outcome",
        "job_viewed",
        "user_registered",
    }


@pytest.mark.parametrize(
    ("event", "older", "newer"),
    [
        (name, old.version, new.version)
        for name, event in EVENTS.items()
        for old, new in itertools.combinations(event.versions, 2)
    ]
    or [pytest.param(None, None, None, marks=pytest.mark.skip("no event has two versions"))],
)
@pytest.mark.unit
def test_every_schema_version_reads_what_each_earlier_version_wrote(event, older, newer):
    versions = {v.version: v for v in EVENTS[event].versions}
    assert backward_problems(versions[older].schema, versions[newer].schema) == []


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(EVENTS))
def test_records_of_every_version_round_trip_through_the_newest_reader(name):
    event = EVENTS[name]
    for version in event.versions:
        for record in generate_many(version.schema, 20):
            decoded = event.decode(event.encode_with(version, record))
            for field in version.schema["fields"]:
                assert _plain(decoded[field["name"]]) == record[field["name"]]


@pytest.mark.unit
def test_messages_carry_the_writer_schema_fingerprint():
    event = EVENTS["application_created"]
    data = event.encode(next(generate_many(event.latest.schema, 1)))
    assert data[:2] == MAGIC
    assert data[2:10] == event.latest.fingerprint
    assert event.writer_of(data) is event.latest
    assert len({v.fingerprint for v in event.versions}) == len(event.versions)


def test_v1_messages_replayed_from_kafka_decode_with_the_v2_reader(settings, kafka_admin):
    event = EVENTS["application_created"]
    v1 = event.versions[0]
    assert event.latest.version >= 2
    run = uuid.uuid4().hex.encode()
    written = list(generate_many(v1.schema, 25))
    producer = idempotent_producer(settings.kafka)
    for record in written:
        producer.produce(
            "application.created", key=record["job_id"], value=event.encode_with(v1, record), headers={"run": run}
        )
    assert producer.flush(30) == 0

    consumer = group_consumer(settings.kafka, f"test-replay-{uuid.uuid4().hex[:8]}")
    consumer.subscribe(["application.created"])
    messages = consume_until(
        consumer, lambda kept: len(kept) >= len(written), 60, keep=lambda m: header(m, "run") == run
    )
    consumer.close()

    replayed = sorted((event.decode(m.value()) for m in messages), key=lambda r: r["event_id"])
    assert len(replayed) == len(written)
    for record, original in zip(replayed, sorted(written, key=lambda r: r["event_id"]), strict=True):
        assert record["referral_source"] is None  # the v2 field, defaulted
        assert {k: _plain(record[k]) for k in original} == original


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "not Avro single-object encoded"),
        (b'{"json": true}', "not Avro single-object encoded"),
        (MAGIC + b"\x00" * 8 + b"body", "no committed schema has fingerprint 0000000000000000"),
    ],
)
@pytest.mark.unit
def test_undecodable_bytes_raise_a_schema_error_saying_why(data, says):
    with pytest.raises(SchemaError, match=says):
        EVENTS["application_created"].decode(data)


@pytest.mark.unit
def test_a_truncated_body_is_a_schema_error_not_a_crash():
    event = EVENTS["job_lifecycle"]
    data = event.encode(next(generate_many(event.latest.schema, 1)))
    with pytest.raises(SchemaError, match="corrupt body"):
        event.decode(data[:-3])
    with pytest.raises(SchemaError, match="trailing bytes"):
        event.decode(data + b"\x00")


@pytest.mark.unit
def test_unknown_fingerprint_error_names_the_event_and_fingerprint():
    with pytest.raises(UnknownWriterSchemaError) as raised:
        EVENTS["job_viewed"].decode(MAGIC + bytes(range(8)) + b"\x00")
    assert raised.value.event == "job_viewed"
    assert raised.value.fingerprint == bytes(range(8))


@pytest.mark.unit
def test_quix_serde_pair_round_trips_and_reports_bad_input_as_serialization_errors():
    event = EVENTS["application_decided"]
    ctx = SerializationContext(topic="application.decided", field=MessageField.VALUE)
    record = next(generate_many(event.latest.schema, 1))
    decoded = AvroEventDeserializer(event)(AvroEventSerializer(event)(record, ctx), ctx)
    assert {name: _plain(value) for name, value in decoded.items()} == record
    with pytest.raises(SerializationError):
        AvroEventSerializer(event)({"application_id": 1}, ctx)
    with pytest.raises(SerializationError):
        AvroEventDeserializer(event)(b"garbage", ctx)


BASE = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "int"}]}


@pytest.mark.parametrize(
    ("reader_fields", "says"),
    [
        ([{"name": "a", "type": "int"}, {"name": "b", "type": "string"}], "$.b: added without a default"),
        ([{"name": "a", "type": "string"}], "$.a: writer int cannot be read as string"),
        ([{"name": "a", "type": ["null", "string"]}], "$.a: writer type int matches no branch"),
    ],
)
@pytest.mark.unit
def test_the_compatibility_check_catches_breaking_changes(reader_fields, says):
    problems = backward_problems(_parse(BASE), _parse({**BASE, "fields": reader_fields}))
    assert any(says in problem for problem in problems), problems


@pytest.mark.unit
def test_the_compatibility_check_allows_promotions_defaults_and_widened_unions():
    reader = {
        "type": "record",
        "name": "T",
        "fields": [
            {"name": "a", "type": ["null", "long"]},
            {"name": "b", "type": "string", "default": ""},
        ],
    }
    assert backward_problems(_parse(BASE), _parse(reader)) == []


@pytest.mark.unit
def test_the_compatibility_check_catches_removed_enum_symbols():
    def enum(symbols):
        return {
            "type": "record",
            "name": "T",
            "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": symbols}}],
        }

    assert backward_problems(_parse(enum(["x", "y"])), _parse(enum(["x", "y", "z"]))) == []
    assert backward_problems(_parse(enum(["x", "y"])), _parse(enum(["x"]))) == [
        "$.e: enum symbols ['y'] removed without an enum default"
    ]
