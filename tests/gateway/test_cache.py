import asyncio
import uuid

import pytest
import redis

from gateway.clients.cache import SwrCache
from jobstream.breaker import CircuitBreaker

pytestmark = pytest.mark.anyio


def _cache(client, fresh_s: int, stale_s: int, lookups: list[str]) -> SwrCache:
    breaker = CircuitBreaker("redis", failures=5, reset_s=5, errors=(redis.RedisError, OSError))
    return SwrCache(
        client,
        breaker,
        name=f"test-{uuid.uuid4().hex[:8]}",
        fresh_s=fresh_s,
        stale_s=stale_s,
        on_lookup=lambda cache, result: lookups.append(result),
    )


async def test_a_stampede_on_a_cold_key_loads_it_once(async_redis):
    lookups: list[str] = []
    cache = _cache(async_redis, fresh_s=60, stale_s=60, lookups=lookups)
    loads = []

    async def slow_load() -> dict:
        loads.append(1)
        await asyncio.sleep(0.3)
        return {"jobs": ["a"]}

    results = await asyncio.gather(*(cache.get("search", slow_load) for _ in range(20)))

    assert results == [{"jobs": ["a"]}] * 20
    assert len(loads) == 1
    assert lookups.count("miss") == 20
    assert await cache.get("search", slow_load) == {"jobs": ["a"]} and lookups[-1] == "hit"
    await cache.close()


async def test_a_stale_entry_is_served_at_once_while_one_caller_refreshes_it(async_redis):
    lookups: list[str] = []
    cache = _cache(async_redis, fresh_s=1, stale_s=30, lookups=lookups)
    versions = iter(["v1", "v2", "v3"])
    refreshed = asyncio.Event()

    async def load() -> str:
        value = next(versions)
        if value == "v2":
            await asyncio.sleep(0.2)
            refreshed.set()
        return value

    assert await cache.get("detail", load) == "v1"
    await asyncio.sleep(1.1)
    stale = await asyncio.gather(*(cache.get("detail", load) for _ in range(10)))
    await asyncio.wait_for(refreshed.wait(), 5)
    await asyncio.sleep(0.05)
    fresh = await cache.get("detail", load)

    assert stale == ["v1"] * 10
    assert lookups.count("stale") == 10
    assert fresh == "v2"
    await cache.close()
