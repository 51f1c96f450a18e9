"""Idempotency keys: a retried request with the same key gets the first request's application id, not a new event.

One Redis key per (caller, Idempotency-Key) holds ``state|fingerprint|application_id``, claimed atomically
*before* producing. States: ``in_flight`` (a request is producing now; held for a short lease, so a crashed
gateway does not block the key for a day), ``done`` (acknowledged by Kafka; kept for the TTL) and ``failed``
(Kafka refused or timed out; the next retry takes the key over and produces again with the *same*
application id, so even a write that was acknowledged late stays one application downstream).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as redis

from jobstream.breaker import CircuitBreaker, CircuitOpen
from state import redis_keys

log = logging.getLogger(__name__)

_CLAIM = """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], 'in_flight|' .. ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
  return {'new', ARGV[2]}
end
local state, fingerprint, id = string.match(current, '^([^|]+)|([^|]+)|(.+)$')
if fingerprint ~= ARGV[1] then return {'mismatch', id} end
if state == 'failed' then
  redis.call('SET', KEYS[1], 'in_flight|' .. fingerprint .. '|' .. id, 'PX', ARGV[3])
  return {'retry', id}
end
return {state, id}
"""


class Outcome(StrEnum):
    NEW = "new"  # first use of the key: produce with the given id
    RETRY = "retry"  # an earlier attempt failed: produce again with the stored id
    DONE = "done"  # already acknowledged: answer with the stored id, produce nothing
    IN_FLIGHT = "in_flight"  # another request with this key is producing right now
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    application_id: str


class IdempotencyStore:
    def __init__(self, client: redis.Redis, breaker: CircuitBreaker, *, ttl_s: int, lease_ms: int) -> None:
        self._client = client
        self._claim = client.register_script(_CLAIM)
        self._breaker = breaker
        self._ttl_s = ttl_s
        self._lease_ms = lease_ms

    async def claim(self, key: str, fingerprint: str, application_id: str) -> Claim:
        """Atomically take `key` for a request, or learn what an earlier request with it became."""
        outcome, stored_id = await self._breaker.call(
            lambda: self._claim(keys=[_redis_key(key)], args=[fingerprint, application_id, self._lease_ms])
        )
        return Claim(Outcome(outcome.decode()), stored_id.decode())

    async def complete(self, key: str, fingerprint: str, application_id: str) -> None:
        """Mark the key's event acknowledged. Never raises: the event is durable whatever Redis says now."""
        await self._set(key, f"done|{fingerprint}|{application_id}")

    async def fail(self, key: str, fingerprint: str, application_id: str) -> None:
        """Leave the key to the next retry. Never raises, so the client sees why the write failed."""
        await self._set(key, f"failed|{fingerprint}|{application_id}")

    async def _set(self, key: str, value: str) -> None:
        try:
            await self._breaker.call(lambda: self._client.set(_redis_key(key), value, ex=self._ttl_s))
        except CircuitOpen as error:
            # The key stays in_flight until its lease ends; then a retry gets a new id, which the dedup
            # topology (one application per candidate and job) still collapses.
            log.warning("idempotency key %s not updated to %s: %s", key, value.split("|", 1)[0], error.message)


def _redis_key(key: str) -> str:
    return redis_keys.idempotency(key)
