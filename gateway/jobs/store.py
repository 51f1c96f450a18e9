"""The current state of a job, which updates and closes need: the job.lifecycle event carries the whole job.

The gateway keeps, in Redis, a copy of every job it published, written once Kafka acknowledged the event. That
copy is read first because it is current the moment the 202 leaves: the MySQL read model lags by the sink's
batch interval, and an employer who creates then at once edits a job must not get a 404. When Redis lost the
copy (eviction, a flushed cache), the `jobs` read model is the fallback. A short per-job lock keeps two
concurrent edits of one job from both reading the same state and the second silently undoing the first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import Any

import redis.asyncio as redis

from gateway.clients.readmodels import ReadModels
from jobstream.breaker import CircuitBreaker, CircuitOpen
from state import redis_keys

Job = dict[str, Any]
_COPY_TTL_S = 30 * 24 * 3600

log = logging.getLogger(__name__)
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class JobStore:
    def __init__(self, client: redis.Redis, breaker: CircuitBreaker, read_models: ReadModels) -> None:
        self._client = client
        self._breaker = breaker
        self._read_models = read_models
        self._release = client.register_script(_RELEASE)

    async def current(self, job_id: str) -> Job | None:
        raw = await self._breaker.call(lambda: self._client.get(_copy_key(job_id)))
        if raw is not None:
            job: Job = json.loads(raw)
            return job
        return await self._read_models.job(job_id)

    async def latest(self, job_id: str) -> Job | None:
        """The job as last published, for readers: the copy, else (copy lost, Redis unavailable) the read model.

        Job pages read this rather than the read model alone: an edit is invalidated from the page cache at once,
        and a read model still a batch behind would otherwise be cached again, stale, for the cache's lifetime.
        """
        with contextlib.suppress(CircuitOpen):
            raw = await self._breaker.call(lambda: self._client.get(_copy_key(job_id)))
            if raw is not None:
                job: Job = json.loads(raw)
                return job
        return await self._read_models.job(job_id)

    async def remember(self, job: Job) -> None:
        """Keep the published job. Never raises: the event is durable, and the read model takes over soon."""
        payload = json.dumps(job)
        try:
            await self._breaker.call(lambda: self._client.set(_copy_key(job["job_id"]), payload, ex=_COPY_TTL_S))
        except CircuitOpen as error:
            log.warning("copy of job %s not kept: %s", job["job_id"], error.message)

    async def lock(self, job_id: str, hold_ms: int) -> str | None:
        """A lock token when this caller now holds the job's edit lock, None when someone else does."""
        token = str(uuid.uuid4())
        taken = await self._breaker.call(lambda: self._client.set(_lock_key(job_id), token, nx=True, px=hold_ms))
        return token if taken else None

    async def unlock(self, job_id: str, token: str) -> None:
        # A lock that cannot be released expires on its own; the change itself already succeeded or failed.
        with contextlib.suppress(CircuitOpen):
            await self._breaker.call(lambda: self._release(keys=[_lock_key(job_id)], args=[token]))


def _copy_key(job_id: str) -> str:
    return redis_keys.gateway_job(job_id)


def _lock_key(job_id: str) -> str:
    return redis_keys.gateway_job_lock(job_id)
