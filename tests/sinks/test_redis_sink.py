"""The Redis read-model sink against a real Redis: layout, exactly-once per offset, versioned details."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from quixstreams.sinks import SinkBackpressureError
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobstream.backoff import Backoff
from jobstream.consumer_offsets import commit_at_end
from jobstream.settings import PROJECT_ROOT
from sinks.mysql.sink import RetryPolicy
from sinks.redis.plans import decision_plan, job_plan, plans, stage_plan
from sinks.redis.sink import RedisReadModelSink
from state import redis_keys
from tests.sinks.test_mysql_sink import T0, decided_event, items, job_event, new_id, stage_event
from tests.sinks.test_replay import produce

FAST = RetryPolicy(max_attempts=2, backoff=Backoff(base_s=0.01, cap_s=0.02), backpressure_s=4)


@pytest.fixture
def group(redis_client: redis.Redis) -> Iterator[str]:
    """A consumer group name of its own; every key the test wrote is deleted after it."""
    name = f"test-redis-sink-{uuid.uuid4().hex[:8]}"
    yield name
    redis_client.delete(*redis_client.keys(f"{redis_keys.PREFIX}sink:{name}:*") or ["-"])


@pytest.fixture
def cleanup(redis_client: redis.Redis) -> Iterator[list[str]]:
    keys: list[str] = []
    yield keys
    if keys:
        redis_client.delete(*keys)


def no_rejections(partition: int, refused: list) -> None:
    raise AssertionError(f"the sink refused valid events: {[(item.offset, error) for item, error in refused]}")


def sink(client: redis.Redis, group: str, topic: str, plan) -> RedisReadModelSink:
    return RedisReadModelSink(client, group, topic, plan, FAST, rejected=no_rejections)


def snapshot(client: redis.Redis, keys: list[str]) -> dict[str, object]:
    state: dict[str, object] = {}
    for key in keys:
        kind = client.type(key).decode()
        if kind == "hash":
            state[key] = client.hgetall(key)
        elif kind == "zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            state[key] = client.get(key)
    return state


def test_decisions_fill_the_application_the_candidate_list_the_counters_and_trending(redis_client, group, cleanup):
    job_id = new_id()
    candidates = [new_id() for _ in range(4)]
    events = [
        (decided_event(new_id(), job_id, candidate, "rejected" if n == 0 else "accepted"), n)
        for n, candidate in enumerate(candidates)
    ]
    counters, trending = redis_keys.job_counters(job_id), redis_keys.trending_jobs(T0)
    cleanup += [counters, *(redis_keys.candidate_applications(c) for c in candidates)]
    cleanup += [redis_keys.application(event["application_id"]) for event, _ in events]

    sink(redis_client, group, "application.decided", decision_plan).write_items(
        "application.decided", 0, items(*events)
    )

    assert redis_client.hgetall(counters) == {
        b"applications": b"4",
        b"accepted": b"3",
        b"rejected": b"1",
        b"rejected:job_closed": b"1",
    }
    assert redis_client.zscore(trending, job_id) == 3
    assert redis_client.ttl(trending) > 0
    redis_client.zrem(trending, job_id)
    first = events[1][0]
    assert redis_client.zrange(redis_keys.candidate_applications(candidates[1]), 0, -1) == [
        first["application_id"].encode()
    ]
    assert redis_client.hget(redis_keys.application(first["application_id"]), "status") == b"accepted"


def test_a_redelivered_batch_and_an_overlapping_one_apply_each_offset_once(redis_client, group, cleanup):
    job_id = new_id()
    events = [(decided_event(new_id(), job_id, new_id()), offset) for offset in range(8)]
    counters = redis_keys.job_counters(job_id)
    cleanup.append(counters)
    cleanup += [redis_keys.application(event["application_id"]) for event, _ in events]
    cleanup += [redis_keys.candidate_applications(event["candidate_id"]) for event, _ in events]
    writer = sink(redis_client, group, "application.decided", decision_plan)

    writer.write_items("application.decided", 3, items(*events[:5]))
    before = snapshot(redis_client, cleanup)
    writer.write_items("application.decided", 3, items(*events[:5]))
    assert snapshot(redis_client, cleanup) == before
    writer.write_items("application.decided", 3, items(*events[3:]))

    assert redis_client.hget(counters, "applications") == b"8"
    assert redis_client.get(redis_keys.sink_offset(group, "application.decided", 3)) == b"7"
    redis_client.zrem(redis_keys.trending_jobs(T0), job_id)


def test_a_decision_read_again_at_other_offsets_or_by_another_group_counts_its_application_once(
    redis_client, group, cleanup
):
    job_id = new_id()
    events = [decided_event(new_id(), job_id, new_id(), "rejected" if n == 0 else "accepted") for n in range(3)]
    counters, trending = redis_keys.job_counters(job_id), redis_keys.trending_jobs(T0)
    cleanup += [counters, *(redis_keys.application(event["application_id"]) for event in events)]
    cleanup += [redis_keys.candidate_applications(event["candidate_id"]) for event in events]
    writer = sink(redis_client, group, "application.decided", decision_plan)

    writer.write_items("application.decided", 0, items(*((event, n) for n, event in enumerate(events))))
    # The same decisions again, later in the topic (a producer retry, a re-decided replay) ...
    writer.write_items("application.decided", 0, items(*((event, 10 + n) for n, event in enumerate(events))))
    # ... and read by a second sink group from the start.
    other = sink(redis_client, f"{group}-second", "application.decided", decision_plan)
    other.write_items("application.decided", 0, items(*((event, n) for n, event in enumerate(events))))
    redis_client.delete(redis_keys.sink_offset(f"{group}-second", "application.decided", 0))

    assert redis_client.hgetall(counters) == {
        b"applications": b"3",
        b"accepted": b"2",
        b"rejected": b"1",
        b"rejected:job_closed": b"1",
    }
    assert redis_client.zscore(trending, job_id) == 2
    redis_client.zrem(trending, job_id)


def test_a_job_detail_is_only_replaced_by_a_newer_version(redis_client, group, cleanup):
    job_id, company_id = new_id(), new_id()
    detail = redis_keys.job_detail(job_id)
    cleanup.append(detail)
    writer = sink(redis_client, group, "job.lifecycle", job_plan)

    writer.write_items("job.lifecycle", 0, items((job_event(job_id, company_id, "closed", 5, title="Closed"), 20)))
    # Another partition's offsets (or a read-through cache fill) may be lower: the version field decides.
    writer.write_items("job.lifecycle", 1, items((job_event(job_id, company_id, "created", 0, title="Open"), 4)))

    stored = redis_client.hgetall(detail)
    assert (stored[b"status"], stored[b"title"], stored[b"version"]) == (b"closed", b"Closed", b"20")
    assert stored[b"tags"] == b'["kafka", "python"]'


def test_a_stage_moves_forward_only(redis_client, group, cleanup):
    app_id, job_id = new_id(), new_id()
    cleanup.append(redis_keys.application(app_id))
    writer = sink(redis_client, group, "application.stage_changed", stage_plan)
    writer.write_items("application.stage_changed", 0, items((stage_event(app_id, job_id, "offer", 9), 9)))
    writer.write_items("application.stage_changed", 1, items((stage_event(app_id, job_id, "reviewed", 1), 2)))
    assert redis_client.hmget(redis_keys.application(app_id), "stage", "stage_version") == [b"offer", b"9"]


def test_an_unreachable_redis_raises_backpressure_with_retry_after(group):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    # No retries inside redis-py: the sink's own policy is the one under test.
    client = redis.Redis(host="127.0.0.1", port=closed_port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    writer = sink(client, group, "application.decided", decision_plan)
    with pytest.raises(SinkBackpressureError) as raised:
        writer.write_items("application.decided", 0, items((decided_event(new_id(), new_id(), new_id()), 1)))
    assert raised.value.retry_after == FAST.backpressure_s


def test_the_redis_sink_process_applies_what_is_produced_to_the_topics(settings, tmp_path):
    """`python -m sinks redis` against Redis db 13, this test's own: it holds only what the process wrote."""
    job_id = new_id()
    group = f"test-sinks-redis-{uuid.uuid4().hex[:8]}"
    commit_at_end(settings.kafka, group, sorted(plans()))  # only what this test produces
    produce(
        settings,
        "application.decided",
        "application_decided",
        [decided_event(new_id(), job_id, new_id()) for _ in range(3)],
        "job_id",
    )
    url = settings.redis_url.rsplit("/", 1)[0] + "/13"
    env = {
        **os.environ,
        # Its group is not the identity's own: it reaches Kafka as the tests do.
        **settings.kafka.environment(),
        "JOBSTREAM_REDIS_URL": url,
        "JOBSTREAM_SINKS_REDIS_GROUP": group,
        "JOBSTREAM_SINKS_COMMIT_INTERVAL_MS": "200",
        "JOBSTREAM_LOCAL_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sinks", "redis"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 60
        while client.hget(redis_keys.job_counters(job_id), "applications") != b"3":
            assert time.monotonic() < deadline, "the sink process did not apply the decisions within 60s"
            assert process.poll() is None, "the sink process died"
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        for key in client.scan_iter(f"{redis_keys.PREFIX}*", count=1000):
            client.delete(key)
        client.close()
    assert process.returncode == 0, stderr.decode()[-2000:]
