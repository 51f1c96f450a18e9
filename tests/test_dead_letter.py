"""Poison messages go to dead_letter byte for byte, with headers saying why, and the topology carries on."""

from __future__ import annotations

import os
import time

import pytest

from schemas.avro import MAGIC
from tests.topology_harness import EVENTS, TopicReader, application_record, ids, job_record


@pytest.fixture
def dead_letters(settings):
    reader = TopicReader(settings.kafka_bootstrap, "dead_letter", None)
    yield reader
    reader.close()


@pytest.fixture
def decided(settings):
    reader = TopicReader(settings.kafka_bootstrap, "application.decided", EVENTS["application_decided"])
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
