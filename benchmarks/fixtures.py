"""What a load needs: candidate tokens, job ids, jobs that exist for the acceptance topology, scratch databases."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pymysql
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from benchmarks.kafka_tools import flush_all, idempotent_producer
from gateway.accounts.profiles import ProfileCache
from gateway.accounts.tokens import token_service
from gateway.http.principal import Role
from jobstream.breaker import CircuitBreaker
from jobstream.settings import Settings
from schemas import examples, load_event_schemas
from schemas.topics import JOB_LIFECYCLE
from state.migrate import apply_migrations, connect, load_migrations

APPLICATION_BODY = {
    "cover_letter": "I have run Kafka in production for years and would love to build this with you.",
    "resume_url": "https://cv.example.com/candidate.pdf",
}


def write_tokens(settings: Settings, count: int, path: Path) -> list[str]:
    """`count` access tokens of new candidates, one per line in `path`; returns their user ids."""
    # Issuing signs locally; the Redis client is never used for it.
    tokens = token_service(settings.accounts, aioredis.Redis.from_url(settings.redis_url))
    user_ids, lines = [], []
    for _ in range(count):
        user_id = str(uuid.uuid4())
        issued = tokens.issue(user_id, Role.CANDIDATE, None, session_id=str(uuid.uuid4()))
        user_ids.append(user_id)
        lines.append(issued.token)
    path.write_text("\n".join(lines) + "\n")
    return user_ids


WARM_NOTE = (
    "candidates' profiles cached first through gateway.accounts.profiles.ProfileCache (steady state of registered "
    "candidates): the tokens' users are not in MySQL, and an uncached miss costs a MySQL lookup per application"
)


def warm_profiles(settings: Settings, user_ids: list[str]) -> None:
    """Cache a profile for each candidate, as the gateway does after its first lookup of a registered user.

    The benchmark's candidates exist only as tokens, not as users in MySQL: without this every application would
    look its candidate up in MySQL and find nothing (a miss is never cached), which no registered candidate causes.
    """

    async def put_all() -> None:
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
        breaker = CircuitBreaker("redis", failures=5, reset_s=5, errors=(RedisError, OSError))
        cache = ProfileCache(client, breaker, ttl_s=settings.accounts.profile_cache_ttl_s)
        now = datetime.now(UTC).isoformat()
        try:
            for user_id in user_ids:
                profile = {
                    "user_id": user_id,
                    "email": f"{user_id}@candidates.example.com",
                    "role": Role.CANDIDATE.value,
                    "company_id": None,
                    "display_name": "Benchmark candidate",
                    "created_at": now,
                    "updated_at": now,
                }
                await cache.put(profile)
        finally:
            await client.aclose()

    asyncio.run(put_all())


def write_job_ids(count: int, path: Path) -> list[str]:
    job_ids = [str(uuid.uuid4()) for _ in range(count)]
    path.write_text("\n".join(job_ids) + "\n")
    return job_ids


def job_created(job_id: str) -> dict[str, object]:
    """A job.lifecycle ``created`` event for an open job with no cap and no deadline."""
    return dict(
        examples.job_lifecycle(
            job_id,
            title="Benchmark job",
            description="A job the benchmark applies to",
            location="Berlin",
            tags=["benchmark"],
        )
    )


def create_jobs(settings: Settings, job_ids: list[str]) -> None:
    """Open jobs on job.lifecycle, acknowledged, so that the acceptance topology accepts applications to them."""
    event = load_event_schemas()["job_lifecycle"]
    producer = idempotent_producer(settings.kafka)
    for job_id in job_ids:
        producer.produce(JOB_LIFECYCLE, key=job_id.encode(), value=event.encode(job_created(job_id)))
    flush_all(producer)


@contextlib.contextmanager
def scratch_database(settings: Settings, migrated: bool = False, prefix: str = "jobstream_bench") -> Iterator[str]:
    """A database ``<prefix>_<hex>`` (with every migration if `migrated`), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with connect(settings.mysql) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        if migrated:
            with connect(settings.mysql, name) as connection:
                apply_migrations(connection, load_migrations())
        yield name
    finally:
        with connect(settings.mysql) as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


class ConnectionWatch:
    """Polls the server's ``Threads_connected`` in a side thread; `peak` is the most seen (this probe included)."""

    def __init__(self, settings: Settings, interval_s: float = 0.05) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[int] = []

    def __enter__(self) -> ConnectionWatch:
        self._connection = connect(self._settings.mysql)
        self.before = self._read()
        self._thread = threading.Thread(target=self._poll, name="mysql-connections", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._connection.close()

    @property
    def peak(self) -> int:
        return max(self.samples, default=self.before)

    def _read(self) -> int:
        with self._connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            return int(cursor.fetchone()[1])

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._read())
            except pymysql.MySQLError:
                # A saturated server may refuse the probe; the burst goes on, the gap shows in the sample count.
                time.sleep(self._interval_s)
            self._stop.wait(self._interval_s)
