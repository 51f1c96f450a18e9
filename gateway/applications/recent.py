"""What Redis knows of an application before the MySQL read model shows it.

Whose it is: recorded once Kafka acknowledged the application (one SET with a TTL), so its candidate can ask about
it while it is pending; without Redis the record is skipped with a warning (the application itself is durable, and
its candidate sees it once decided). Its decision and stage: the Redis sink's hash, written and announced (see
`gateway.applications.watch`) as soon as the decision is read, before the MySQL sink's batch lands.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as redis

from jobstream.breaker import CircuitBreaker, CircuitOpen
from jobstream.clock import from_epoch_ms, iso_ms
from state import redis_keys

log = logging.getLogger(__name__)


class RecentApplications:
    def __init__(self, client: redis.Redis, breaker: CircuitBreaker, *, ttl_s: int) -> None:
        self._client = client
        self._breaker = breaker
        self._ttl_s = ttl_s

    async def record_pending(self, application_id: str, candidate_id: str) -> None:
        key = redis_keys.pending_application(application_id)
        try:
            await self._breaker.call(lambda: self._client.set(key, candidate_id, ex=self._ttl_s))
        except CircuitOpen as error:
            log.warning("pending application %s not recorded: %s", application_id, error.message)

    async def candidate(self, application_id: str) -> str | None:
        """The candidate who applied, or None (unknown, expired, or Redis unavailable)."""
        try:
            raw = await self._breaker.call(lambda: self._client.get(redis_keys.pending_application(application_id)))
        except CircuitOpen:
            return None
        return raw.decode() if isinstance(raw, bytes) else raw

    async def decided(self, application_id: str) -> dict[str, Any] | None:
        """The decision and stage the Redis read model holds, as the API shows an application, or None."""
        try:
            fields = await self._breaker.call(lambda: self._client.hgetall(redis_keys.application(application_id)))
        except CircuitOpen:
            return None
        row = {key.decode(): value.decode() for key, value in fields.items()}
        if "status" not in row:
            return None
        return {
            "application_id": application_id,
            "job_id": row["job_id"],
            "candidate_id": row["candidate_id"],
            "status": row["status"],
            "rejection_reason": row.get("reason") or None,
            "stage": row.get("stage") or "submitted",
            "submitted_at": _iso(row.get("submitted_at")),
            "decided_at": _iso(row.get("decided_at")),
        }


def _iso(millis: str | None) -> str | None:
    return iso_ms(from_epoch_ms(int(millis))) if millis else None
