"""Rate limits per user and per client IP: GCRA in one atomic Redis Lua script, shared by every gateway instance.

GCRA keeps one number per key (the theoretical arrival time), so a check is one round trip and the state is tiny.
The script checks every key of a request at once and consumes from none unless all allow it.

When Redis cannot answer, each instance falls back to the same GCRA held in its own memory: limits stay enforced,
but per instance (N instances admit up to N times the rate) until Redis is back. We chose that over failing
closed (an outage of the cache would take the API down) and over failing open (a flood during the outage).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import redis.asyncio as redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.errors import error_response
from gateway.http.principal import Principal
from jobstream.breaker import CircuitBreaker, CircuitOpen
from state import redis_keys

# KEYS: one per limited identity. ARGV: per key, its emission interval and burst (ms, count).
# Returns {allowed, retry_after_ms, remaining, reset_ms, limit, refusing key's index or 0} for the tightest key.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local new_tats = {}
local best_remaining, best_reset, best_limit = nil, 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tolerance = interval * burst
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local wait = new_tat - tolerance - now
  if wait > 0 then
    return {0, wait, 0, tat - now, burst, i}
  end
  new_tats[i] = new_tat
  local remaining = math.floor((tolerance - (new_tat - now)) / interval)
  if best_remaining == nil or remaining < best_remaining then
    best_remaining, best_reset, best_limit = remaining, new_tat - now, burst
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, new_tats[i], 'PX', math.max(1, new_tats[i] - now))
end
return {1, 0, best_remaining, best_reset, best_limit, 0}
"""


@dataclass(frozen=True)
class Rate:
    per_minute: int
    burst: int

    @property
    def interval_ms(self) -> float:
        return 60_000 / self.per_minute


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_ms: int
    remaining: int
    reset_ms: int
    limit: int
    # Which identity refused the request ("ip", "user"); None when allowed.
    refused_by: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(math.ceil(self.reset_ms / 1000)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
        return headers


class LocalGcra:
    """The same algorithm in process memory: the fallback while Redis is unavailable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._max_keys = max_keys

    def check(self, limits: list[tuple[str, Rate]]) -> Verdict:
        now = self._clock() * 1000
        if len(self._tats) > self._max_keys:
            self._tats = {k: v for k, v in self._tats.items() if v > now}
        new_tats = []
        best: Verdict | None = None
        for key, rate in limits:
            tolerance = rate.interval_ms * rate.burst
            tat = max(self._tats.get(key, now), now)
            new_tat = tat + rate.interval_ms
            wait = new_tat - tolerance - now
            if wait > 0:
                return Verdict(False, math.ceil(wait), 0, math.ceil(tat - now), rate.burst, key.split(":", 1)[0])
            new_tats.append((key, new_tat))
            remaining = math.floor((tolerance - (new_tat - now)) / rate.interval_ms)
            if best is None or remaining < best.remaining:
                best = Verdict(True, 0, remaining, math.ceil(new_tat - now), rate.burst)
        self._tats.update(new_tats)
        if best is None:
            raise ValueError("no limits to check")
        return best


class RateLimiter:
    def __init__(self, client: redis.Redis, breaker: CircuitBreaker, fallback: LocalGcra) -> None:
        self._client = client
        self._script = client.register_script(_GCRA)
        self._breaker = breaker
        self._fallback = fallback

    async def check(self, limits: list[tuple[str, Rate]]) -> Verdict:
        keys = [redis_keys.rate_limit(key) for key, _ in limits]
        args: list[float] = []
        for _, rate in limits:
            args += [rate.interval_ms, rate.burst]
        try:
            result = await self._breaker.call(lambda: self._script(keys=keys, args=args))
        except CircuitOpen:
            return self._fallback.check(limits)
        allowed, retry_after_ms, remaining, reset_ms, limit, refused = (int(v) for v in result)
        refused_by = limits[refused - 1][0].split(":", 1)[0] if refused else None
        return Verdict(bool(allowed), retry_after_ms, remaining, reset_ms, limit, refused_by)


RejectHook = Callable[[str], None]


class RateLimitMiddleware:
    """Limits every request under `prefix` per client IP and, once authenticated, per user; 429 past either."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        user_rate: Rate,
        ip_rate: Rate,
        prefix: str = "/v1/",
        exempt: Collection[str] = (),
        on_reject: RejectHook | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.user_rate = user_rate
        self.ip_rate = ip_rate
        self.prefix = prefix
        self.exempt = frozenset(exempt)
        self.on_reject = on_reject or (lambda kind: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        limits = [(f"ip:{client[0] if client else 'unknown'}", self.ip_rate)]
        user = scope.get("user")
        if isinstance(user, Principal):
            limits.append((f"user:{user.user_id}", self.user_rate))
        verdict = await self.limiter.check(limits)
        headers = verdict.headers()
        if not verdict.allowed:
            self.on_reject(verdict.refused_by or "unknown")
            response = error_response(
                429, "rate_limited", f"too many requests; retry in {headers['Retry-After']} s", headers=headers
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
