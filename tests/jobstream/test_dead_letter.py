"""Poison messages go to dead_letter byte for byte, with headers saying why, and the topology carries on."""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka.admin import NewTopic
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import Serializer

from jobstream.dead_letter import DeadLetterOnError, DeadLetterProducer, Poison
from schemas.avro import MAGIC
from tests.kafka_helpers import idempotent_producer
from tests.topology_harness import EVENTS, TopicReader, application_record, ids, job_record


@pytest.fixture
def dead_letters(settings):
    reader = TopicReader(settings.kafka, "dead_letter", None)
    yield reader
    reader.close()


def test_poison_goes_to_dead_letter_with_its_reason_and_the_next_message_is_processed(
    acceptance_topology, event_producer, dead_letters, decided
):
    job_id = ids("job")
    event_producer.send("job.lifecycle", "job_lifecycle", job_record(job_id))
    event_producer.flush()
    time.sleep(0.01)  # the application's timestamp must follow the job's: the topology reads both in time order
    marker = ids("poison").encode()
    garbage = b"not avro at all " + marker
    unknown_schema = MAGIC + os.urandom(8) + marker
    valid_bytes = EVENTS["application_created"].encode(application_record(job_id))
    poison = {
        garbage: ("undecodable", job_id.encode()),
        unknown_schema: ("unknown_schema", job_id.encode()),
        # A valid record under someone else's key would put its state under the wrong job.
        valid_bytes: ("key_mismatch", b"not-" + job_id.encode()),
    }
    for value, (_, key) in poison.items():
        event_producer.send_raw("application.created", key, value, headers=[("trace", marker)])
    after = application_record(job_id)
    event_producer.send("application.created", "application_created", after)
    event_producer.flush()

    group = acceptance_topology.group.encode()
    copies = dead_letters.read(
        lambda o: o.headers.get("jobstream-topology") == group and o.record["raw"] in poison,
        lambda kept: len(kept) >= len(poison),
        timeout_s=60,
    )
    assert {o.record["raw"] for o in copies} == set(poison)
    for copy in copies:
        kind, key = poison[copy.record["raw"]]
        assert copy.key == key
        assert copy.headers["jobstream-dead-letter-kind"] == kind.encode()
        assert copy.headers["jobstream-dead-letter-reason"]
        assert copy.headers["jobstream-source-topic"] == b"application.created"
        assert int(copy.headers["jobstream-source-offset"]) >= 0
        assert copy.headers["trace"] == marker  # the original headers travel with the copy

    outputs = decided.read(
        lambda o: o.headers.get("jobstream-topology") == group and o.record["job_id"] == job_id,
        lambda kept: len(kept) >= 1,
        timeout_s=60,
    )
    assert [(o.record["application_id"], o.record["outcome"]) for o in outputs] == [
        (after["application_id"], "accepted")
    ]
    assert acceptance_topology.metric("jobstream_topology_dead_letters_total", kind="unknown_schema") >= 1


def test_a_data_error_anywhere_in_a_dataframe_dead_letters_its_message_and_the_next_one_is_processed(
    settings, kafka_admin, dead_letters, tmp_path
):
    """An output its serializer refuses fails outside any guarded step: DeadLetterOnError still sets it aside."""
    source, output, group = ids("test-dl-source"), ids("test-dl-output"), ids("test-dl-group")
    for future in kafka_admin.create_topics([NewTopic(source, 1, 1), NewTopic(output, 1, 1)]).values():
        future.result()
    try:
        producer = idempotent_producer(settings.kafka)
        for value in (b"first", b"refused", b"second"):
            producer.produce(source, key=b"k", value=value)
        assert producer.flush(30) == 0

        class Refusing(Serializer):
            def __call__(self, value: str, ctx: object) -> bytes:
                if value == "refused":
                    raise ValueError("this serializer refuses 'refused'")
                return value.encode()

        seen: list[Poison] = []
        app = Application(
            broker_address=ConnectionConfig.from_librdkafka_dict(settings.kafka.client_config()),
            consumer_group=group,
            auto_offset_reset="earliest",
            state_dir=tmp_path / "state",
            on_processing_error=DeadLetterOnError(DeadLetterProducer(settings.kafka), group, seen.append),
        )
        frame = app.dataframe(app.topic(source, key_deserializer="bytes", value_deserializer="bytes"))
        frame.apply(lambda value: value.decode()).to_topic(app.topic(output, value_serializer=Refusing()))
        app.run(count=2, timeout=30)  # the refused value yields no output

        written = TopicReader(settings.kafka, output, None, from_beginning=True)
        try:
            values = [o.record["raw"] for o in written.read(lambda o: True, lambda kept: len(kept) >= 2, 30)]
        finally:
            written.close()
        assert values == [b"first", b"second"]
        [letter] = dead_letters.read(
            lambda o: o.headers.get("jobstream-topology") == group.encode(), lambda kept: len(kept) >= 1, 30
        )
        assert letter.record["raw"] == b"refused"
        assert letter.headers["jobstream-dead-letter-kind"] == b"unprocessable"
        assert letter.headers["jobstream-source-topic"] == source.encode()
        assert b"refuses 'refused'" in letter.headers["jobstream-dead-letter-reason"]
        assert [p.offset for p in seen] == [1]
    finally:
        for future in kafka_admin.delete_topics([source, output]).values():
            future.result()
