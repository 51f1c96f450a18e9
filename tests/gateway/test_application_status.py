"""A candidate asks what happened to an application: `pending` from its 202 on, and a long-poll (`?wait=`) answered
as soon as the Redis sink makes its decision visible, holding no MySQL connection while it waits."""

import asyncio
import contextlib
import time
import uuid

import pytest
import redis.asyncio as aioredis

from gateway.app import admission_exempt
from gateway.applications.watch import ApplicationWatch
from gateway.http.principal import Role
from jobstream.backoff import Backoff
from schemas import examples
from sinks.mysql.sink import RetryPolicy
from sinks.redis.plans import decision_plan, stage_plan
from sinks.redis.sink import RedisReadModelSink
from state import redis_keys
from tests.sinks.test_mysql_sink import items
from tests.sinks.test_redis_sink import no_rejections

pytestmark = pytest.mark.anyio

APPLICATION = {"cover_letter": "Hello", "resume_url": "https://example.test/cv.pdf"}


@pytest.fixture
def redis_sink(redis_client):
    """The Redis sink's own write path, in a group of its own; every key it wrote is deleted after the test."""
    group = f"test-status-{uuid.uuid4().hex[:8]}"
    written: list[str] = []

    def decide(application_id: str, job_id: str, candidate_id: str, outcome: str = "accepted") -> None:
        decision = examples.application_decided(
            job_id, outcome, application_id=application_id, candidate_id=candidate_id
        )
        written.extend(
            [
                redis_keys.application(application_id),
                redis_keys.job_counters(job_id),
                redis_keys.candidate_applications(candidate_id),
                redis_keys.trending_jobs(decision["submitted_at"]),
            ]
        )
        retry = RetryPolicy(max_attempts=2, backoff=Backoff(base_s=0.01, cap_s=0.02), backpressure_s=1)
        sink = RedisReadModelSink(
            redis_client, group, "application.decided", decision_plan, retry, rejected=no_rejections
        )
        sink.write_items("application.decided", 0, items((decision, len(written))))

    yield decide
    redis_client.delete(*written, *redis_client.keys(f"{redis_keys.PREFIX}sink:{group}:*"), "-")


async def _apply(client, headers) -> str:
    response = await client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=APPLICATION, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["application_id"]


async def test_a_fresh_application_is_pending_for_its_candidate_and_unknown_to_everyone_else(
    gateway_factory, mint_token
):
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)
    application_id = await _apply(client, headers)

    mine = await client.get(f"/v1/applications/{application_id}", headers=headers)
    other = await client.get(f"/v1/applications/{application_id}", headers=mint_token(Role.CANDIDATE)[1])
    employer = await client.get(
        f"/v1/applications/{application_id}", headers=mint_token(Role.EMPLOYER, str(uuid.uuid4()))[1]
    )

    assert (mine.status_code, mine.json()) == (200, {"application_id": application_id, "status": "pending"})
    assert other.status_code == employer.status_code == 404


async def test_a_long_poll_answers_as_soon_as_the_decision_is_visible_without_holding_mysql(
    gateway_factory, gateway_metrics, mint_token, redis_sink
):
    client = await gateway_factory()
    candidate_id, headers = mint_token(Role.CANDIDATE)
    application_id = await _apply(client, headers)
    job_id = str(uuid.uuid4())

    started = time.monotonic()
    poll = asyncio.create_task(client.get(f"/v1/applications/{application_id}?wait=15", headers=headers))
    await asyncio.sleep(1.0)
    assert not poll.done()
    assert "gateway_mysql_connections_in_use 0.0" in gateway_metrics(client)
    redis_sink(application_id, job_id, candidate_id, "rejected")
    decided_at = time.monotonic()
    answer = await asyncio.wait_for(poll, 10)
    answered_at = time.monotonic()

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["rejection_reason"], body["job_id"]) == ("rejected", "job_closed", job_id)
    assert answered_at - decided_at < 1.0, "woken by the sink's announcement, not by a timeout"
    assert answered_at - started < 5


async def test_a_long_poll_with_no_decision_answers_pending_when_its_wait_is_over(gateway_factory, mint_token):
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)
    application_id = await _apply(client, headers)

    started = time.monotonic()
    answer = await client.get(f"/v1/applications/{application_id}", params={"wait": 1}, headers=headers)
    waited = time.monotonic() - started

    assert answer.json()["status"] == "pending"
    assert 1.0 <= waited < 3.0


def _move(redis_client, application_id: str, job_id: str, stage: str) -> None:
    """The Redis sink writes a stage change (and announces it), as it does for `application.stage_changed`."""
    change = examples.application_stage_changed(application_id, job_id, stage)
    retry = RetryPolicy(max_attempts=2, backoff=Backoff(base_s=0.01, cap_s=0.02), backpressure_s=1)
    group = f"test-stage-{uuid.uuid4().hex[:8]}"
    sink = RedisReadModelSink(
        redis_client, group, "application.stage_changed", stage_plan, retry, rejected=no_rejections
    )
    sink.write_items("application.stage_changed", 0, items((change, 1_000)))
    redis_client.delete(*redis_client.keys(f"{redis_keys.PREFIX}sink:{group}:*"), "-")


async def test_a_stage_long_poll_answers_as_soon_as_the_employer_moves_the_application(
    gateway_factory, gateway_metrics, mint_token, redis_sink, redis_client, read_models
):
    client = await gateway_factory()
    candidate_id, headers = mint_token(Role.CANDIDATE)
    job_id = read_models.job(str(uuid.uuid4()), minute=0)
    application_id = read_models.application(job_id, 1, candidate_id=candidate_id)
    redis_sink(application_id, job_id, candidate_id)

    poll = asyncio.create_task(
        client.get(f"/v1/applications/{application_id}", params={"wait": 15, "stage": "submitted"}, headers=headers)
    )
    await asyncio.sleep(1.0)
    assert not poll.done(), "the stage it already shows is no news"
    assert "gateway_mysql_connections_in_use 0.0" in gateway_metrics(client)
    _move(redis_client, application_id, job_id, "interview")
    moved_at = time.monotonic()
    answer = await asyncio.wait_for(poll, 10)

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["stage"]) == ("accepted", "interview")
    assert time.monotonic() - moved_at < 1.0, "woken by the sink's announcement, not by a timeout"


async def test_a_stage_long_poll_answers_at_once_when_the_stage_already_differs_and_after_the_wait_when_not(
    gateway_factory, mint_token, redis_sink, redis_client, read_models
):
    client = await gateway_factory()
    candidate_id, headers = mint_token(Role.CANDIDATE)
    job_id = read_models.job(str(uuid.uuid4()), minute=0)
    application_id = read_models.application(job_id, 1, candidate_id=candidate_id, stage="offer")
    redis_sink(application_id, job_id, candidate_id)
    _move(redis_client, application_id, job_id, "offer")
    url = f"/v1/applications/{application_id}"

    started = time.monotonic()
    stale = await client.get(url, params={"wait": 10, "stage": "interview"}, headers=headers)
    at_once = time.monotonic() - started
    unchanged = await client.get(url, params={"wait": 1, "stage": "offer"}, headers=headers)
    waited = time.monotonic() - started - at_once

    assert (stale.json()["stage"], "history" in stale.json()) == ("offer", True)
    assert at_once < 1.0
    assert unchanged.status_code == 200 and unchanged.json()["status"] == "accepted"
    assert 1.0 <= waited < 3.0


@pytest.mark.parametrize("wait", ["26", "-1", "soon"])
async def test_a_wait_beyond_25_seconds_or_not_a_number_is_refused(gateway_factory, mint_token, wait):
    client = await gateway_factory()
    answer = await client.get(
        f"/v1/applications/{uuid.uuid4()}", params={"wait": wait}, headers=mint_token(Role.CANDIDATE)[1]
    )
    assert (answer.status_code, answer.json()["error"]["field"]) == (422, "wait")


async def test_the_watch_subscribes_again_after_its_connection_is_killed(settings, async_redis):
    subscriber = aioredis.Redis.from_url(settings.redis_url, health_check_interval=10)
    watch = ApplicationWatch(subscriber)
    watch.start()
    try:
        assert await watch.subscribed(5)
        assert await async_redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        application_id = str(uuid.uuid4())
        async with watch.watching(application_id) as changed:
            deadline = time.monotonic() + 15
            # Announce until heard: the first announcements may fall in the gap before it subscribed again.
            while not changed.is_set() and time.monotonic() < deadline:
                await async_redis.publish(redis_keys.APPLICATIONS_CHANGED, application_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 0.5)
            assert changed.is_set(), "no announcement heard within 15 s of the kill"
        assert watch.waiting == 0
    finally:
        await watch.close()
        await subscriber.aclose()


async def test_a_long_poll_holds_no_admission_slot(gateway_factory, mint_token):
    client = await gateway_factory(max_inflight=1, max_queued=1, queue_wait_ms=200)
    _, headers = mint_token(Role.CANDIDATE)
    application_id = await _apply(client, headers)

    polls = [
        asyncio.create_task(client.get(f"/v1/applications/{application_id}?wait=3", headers=headers)) for _ in range(3)
    ]
    await asyncio.sleep(0.5)
    during = [await client.get("/v1/me/applications", headers=headers) for _ in range(3)]
    answers = await asyncio.gather(*polls)

    assert [response.status_code for response in during] == [200, 200, 200]
    assert [answer.json()["status"] for answer in answers] == ["pending"] * 3


@pytest.mark.unit
@pytest.mark.parametrize(
    ("path", "query", "exempt"),
    [
        ("/healthz", b"", True),
        ("/v1/applications/3f2b8c1e-6d4a-4e8b-9a1c-2b7d5e9f0a13", b"wait=10", True),
        ("/v1/applications/3f2b8c1e-6d4a-4e8b-9a1c-2b7d5e9f0a13", b"x=1&wait=25", True),
        ("/v1/applications/3f2b8c1e-6d4a-4e8b-9a1c-2b7d5e9f0a13", b"wait=0", False),
        ("/v1/applications/3f2b8c1e-6d4a-4e8b-9a1c-2b7d5e9f0a13", b"", False),
        ("/v1/applications/3f2b8c1e-6d4a-4e8b-9a1c-2b7d5e9f0a13/stage", b"wait=10", False),
        ("/v1/jobs", b"wait=10", False),
    ],
)
def test_only_probes_and_status_long_polls_skip_admission(path, query, exempt):
    assert admission_exempt({"type": "http", "path": path, "query_string": query}) is exempt
