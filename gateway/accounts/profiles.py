"""Write-through cache of user profiles in Redis: a write goes to MySQL, then its result to the cache.

Reads that miss load from MySQL and fill the cache. With Redis unavailable (its circuit breaker open) reads go to
MySQL and writes skip the cache; a write that could not reach the cache leaves an older copy for at most the TTL,
which is why the TTL is short (30 minutes by default).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from jobstream.breaker import CircuitBreaker, CircuitOpen
from state import redis_keys

CacheHook = Callable[[str, str], None]
_NAME = "profiles"

log = logging.getLogger(__name__)


class ProfileCache:
    def __init__(
        self, client: aioredis.Redis, breaker: CircuitBreaker, *, ttl_s: int, on_lookup: CacheHook | None = None
    ) -> None:
        self._client = client
        self._breaker = breaker
        self._ttl_s = ttl_s
        self._on_lookup = on_lookup or (lambda cache, result: None)

    async def get(self, user_id: str) -> dict[str, Any] | None:
        try:
            raw = await self._breaker.call(lambda: self._client.get(_key(user_id)))
        except CircuitOpen:
            raw = None
        self._on_lookup(_NAME, "miss" if raw is None else "hit")
        return None if raw is None else json.loads(raw)

    async def put(self, profile: dict[str, Any]) -> None:
        payload = json.dumps(profile)
        try:
            await self._breaker.call(lambda: self._client.set(_key(profile["user_id"]), payload, ex=self._ttl_s))
        except CircuitOpen as error:
            log.warning("profile of %s not cached: %s", profile["user_id"], error.message)


def _key(user_id: str) -> str:
    return redis_keys.cached(_NAME, user_id)
