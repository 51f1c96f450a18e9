"""The live Redis read models the Redis sink keeps for jobs: each job's counters, and trending jobs by hour.

Both are read per request (one round trip each), never cached with the job's detail, so a job page shows counts as
fresh as the sink's last batch. Without Redis they are simply absent (None): the job itself still reads from MySQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as redis

from jobstream.breaker import CircuitBreaker, CircuitOpen
from state import redis_keys


class LiveJobStats:
    def __init__(self, client: redis.Redis, breaker: CircuitBreaker) -> None:
        self._client = client
        self._breaker = breaker

    async def counters(self, job_id: str) -> dict[str, Any] | None:
        """Decided applications, accepted and rejected (by reason), each counted once; None without Redis."""
        try:
            raw = await self._breaker.call(lambda: self._client.hgetall(redis_keys.job_counters(job_id)))
        except CircuitOpen:
            return None
        fields = {key.decode(): int(value) for key, value in raw.items()}
        reasons = {key.split(":", 1)[1]: count for key, count in fields.items() if key.startswith("rejected:")}
        return {
            "applications": fields.get("applications", 0),
            "accepted": fields.get("accepted", 0),
            "rejected": fields.get("rejected", 0),
            "rejected_by_reason": dict(sorted(reasons.items())),
        }

    async def trending(self, hours: int, limit: int, now: datetime | None = None) -> list[tuple[str, int]] | None:
        """The jobs with the most accepted applications over the last `hours` UTC hours (this one included), most
        first; None without Redis."""
        hour = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        keys = [redis_keys.trending_jobs(hour - timedelta(hours=back)) for back in range(hours)]
        try:
            scored = await self._breaker.call(lambda: self._client.zunion(keys, withscores=True))
        except CircuitOpen:
            return None
        ranked = sorted(
            ((member.decode(), int(score)) for member, score in scored), key=lambda pair: (-pair[1], pair[0])
        )
        return ranked[:limit]
