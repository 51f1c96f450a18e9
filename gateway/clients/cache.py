"""Redis caching for reads: cache-aside with stale-while-revalidate and a single-flight lock against stampedes.

An entry is fresh for `fresh_s`, then served stale for up to `stale_s` more while one caller (whoever takes
the refresh lock) reloads it in the background. On a miss, one caller loads and the others wait briefly for
its result instead of all hitting MySQL at once. With Redis unavailable every read goes to MySQL, which its
own circuit breaker protects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis

from jobstream.breaker import CircuitBreaker, CircuitOpen
from state import redis_keys

Loader = Callable[[], Awaitable[Any]]
CacheHook = Callable[[str, str], None]

_WAIT_FOR_LOADER_S = 1.0
_WAIT_STEP_S = 0.05


class SwrCache:
    def __init__(
        self,
        client: redis.Redis,
        breaker: CircuitBreaker,
        *,
        name: str,
        fresh_s: int,
        stale_s: int,
        lock_ms: int = 5_000,
        on_lookup: CacheHook | None = None,
    ) -> None:
        self._client = client
        self._breaker = breaker
        self.name = name
        self._fresh_s = fresh_s
        self._stale_s = stale_s
        self._lock_ms = lock_ms
        self._on_lookup = on_lookup or (lambda cache, result: None)
        self._refreshing: set[asyncio.Task[None]] = set()

    async def get(self, key: str, load: Loader) -> Any:
        """The cached value for `key`, loading it with `load` on a miss (a None result is not cached)."""
        entry = await self._read(key)
        if entry is not None:
            age = time.time() - entry["stored_at"]
            if age < self._fresh_s:
                self._on_lookup(self.name, "hit")
                return entry["value"]
            self._on_lookup(self.name, "stale")
            if await self._take_lock(key):
                task = asyncio.create_task(self._refresh(key, load))
                self._refreshing.add(task)
                task.add_done_callback(self._refreshing.discard)
            return entry["value"]
        self._on_lookup(self.name, "miss")
        if await self._take_lock(key):
            try:
                return await self._load_and_store(key, load)
            finally:
                await self._drop_lock(key)
        deadline = time.monotonic() + _WAIT_FOR_LOADER_S
        while time.monotonic() < deadline:
            await asyncio.sleep(_WAIT_STEP_S)
            entry = await self._read(key)
            if entry is not None:
                return entry["value"]
        return await load()

    async def invalidate(self, key: str) -> None:
        with contextlib.suppress(CircuitOpen):
            await self._breaker.call(lambda: self._client.delete(self._key(key)))

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        await asyncio.gather(*self._refreshing, return_exceptions=True)

    async def _refresh(self, key: str, load: Loader) -> None:
        try:
            await self._load_and_store(key, load)
        except CircuitOpen:
            pass  # MySQL is down: keep serving the stale copy until it expires
        finally:
            await self._drop_lock(key)

    async def _load_and_store(self, key: str, load: Loader) -> Any:
        value = await load()
        if value is not None:
            payload = json.dumps({"stored_at": time.time(), "value": value})
            with contextlib.suppress(CircuitOpen):
                await self._breaker.call(
                    lambda: self._client.set(self._key(key), payload, ex=self._fresh_s + self._stale_s)
                )
        return value

    async def _read(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._breaker.call(lambda: self._client.get(self._key(key)))
        except CircuitOpen:
            return None
        return None if raw is None else json.loads(raw)

    async def _take_lock(self, key: str) -> bool:
        try:
            return bool(
                await self._breaker.call(lambda: self._client.set(self._lock(key), b"1", nx=True, px=self._lock_ms))
            )
        except CircuitOpen:
            return True  # no Redis, no coordination: load it ourselves

    async def _drop_lock(self, key: str) -> None:
        with contextlib.suppress(CircuitOpen):
            await self._breaker.call(lambda: self._client.delete(self._lock(key)))

    def _key(self, key: str) -> str:
        return redis_keys.cached(self.name, key)

    def _lock(self, key: str) -> str:
        return redis_keys.cache_lock(self.name, key)
