"""The Redis read models, served: a job page carries its live counters, and /v1/jobs/trending ranks open jobs by the
applications accepted in the last hours. Counts come from the Redis sink's own write path."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.jobs.live import LiveJobStats
from jobstream.breaker import CircuitBreaker
from schemas import examples
from sinks.redis.plans import decision_plan
from state import redis_keys
from tests.sinks.test_mysql_sink import items
from tests.sinks.test_redis_sink import sink

pytestmark = pytest.mark.anyio


@pytest.fixture
def world(mysql, redis_client):
    """Open jobs in MySQL and decisions through the Redis sink; everything written is removed after the test."""
    group = f"test-live-{uuid.uuid4().hex[:8]}"
    jobs: list[str] = []
    keys: list[str] = []
    decided: set[datetime] = set()
    offsets = iter(range(1_000_000))

    class World:
        def job(self, status: str = "open") -> str:
            job_id = str(uuid.uuid4())
            now = datetime.now(UTC).replace(tzinfo=None)
            with mysql.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO jobs (job_id, company_id, title, description, location, status, created_at,"
                    " updated_at, version) VALUES (%s, %s, 'Trending', 'D', 'Oslo', %s, %s, %s, 1)",
                    (job_id, str(uuid.uuid4()), status, now, now),
                )
            mysql.commit()
            jobs.append(job_id)
            keys.append(redis_keys.job_counters(job_id))
            return job_id

        def decide(self, job_id: str, outcome: str = "accepted", at: datetime | None = None) -> None:
            submitted = at or datetime.now(UTC)
            decision = examples.application_decided(job_id, outcome, submitted_at=submitted, decided_at=submitted)
            decided.add(submitted.replace(minute=0, second=0, microsecond=0))
            keys.extend(
                [
                    redis_keys.application(decision["application_id"]),
                    redis_keys.candidate_applications(decision["candidate_id"]),
                ]
            )
            writer = sink(redis_client, group, "application.decided", decision_plan)
            writer.write_items("application.decided", 0, items((decision, next(offsets))))

    yield World()
    for hour in decided:
        redis_client.zrem(redis_keys.trending_jobs(hour), *jobs)
    redis_client.delete(*keys, *redis_client.keys(f"{redis_keys.PREFIX}sink:{group}:*"), "-")
    with mysql.cursor() as cursor:
        for job_id in jobs:
            cursor.execute("DELETE FROM jobs WHERE job_id = %s", (job_id,))
    mysql.commit()


async def test_a_job_page_shows_counters_as_fresh_as_the_sink_even_while_its_detail_is_cached(gateway_factory, world):
    client = await gateway_factory()
    job_id = world.job()
    world.decide(job_id)
    first = (await client.get(f"/v1/jobs/{job_id}")).json()
    world.decide(job_id, "rejected")
    world.decide(job_id)
    second = (await client.get(f"/v1/jobs/{job_id}")).json()

    assert first["counters"] == {"applications": 1, "accepted": 1, "rejected": 0, "rejected_by_reason": {}}
    assert second["counters"] == {
        "applications": 3,
        "accepted": 2,
        "rejected": 1,
        "rejected_by_reason": {"job_closed": 1},
    }
    assert second["title"] == first["title"] == "Trending"


async def test_trending_ranks_jobs_by_applications_accepted_in_the_span_asked(settings, async_redis, world):
    # Hours of their own, decades ahead, so no other test's decisions share the buckets.
    now = datetime(2090, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(100_000))
    hot, warm, old = world.job(), world.job(), world.job()
    for _ in range(3):
        world.decide(hot, at=now)
    world.decide(hot, "rejected", at=now)  # a rejection is not trending
    world.decide(warm, at=now - timedelta(hours=1))
    for _ in range(5):
        world.decide(old, at=now - timedelta(hours=30))
    live = LiveJobStats(async_redis, CircuitBreaker("redis", failures=5, reset_s=1, errors=(OSError,)))

    assert await live.trending(24, 10, now=now) == [(hot, 3), (warm, 1)]
    assert await live.trending(48, 10, now=now) == [(old, 5), (hot, 3), (warm, 1)]
    assert await live.trending(48, 2, now=now) == [(old, 5), (hot, 3)]
    assert await live.trending(1, 10, now=now + timedelta(hours=72)) == []


async def test_the_trending_endpoint_lists_open_jobs_only_with_their_accepted_count(gateway_factory, world):
    client = await gateway_factory()
    closed = world.job(status="closed")
    for _ in range(200):
        world.decide(closed)

    answer = await client.get("/v1/jobs/trending", params={"hours": 24, "limit": 50})

    assert answer.status_code == 200
    assert answer.json()["hours"] == 24
    assert all(item["status"] == "open" and item["accepted"] >= 1 for item in answer.json()["items"])
    assert closed not in [item["job_id"] for item in answer.json()["items"]]
    assert (await client.get("/v1/jobs/trending", params={"hours": 73})).status_code == 422
