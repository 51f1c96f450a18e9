"""The Redis read models, on Quix Streams' `BatchingSink`: one Lua script call per batch.

Idempotency without WATCH: the sink keeps, per topic partition, the last offset it applied. A batch is
filtered to the offsets above it, its increments summed (write-behind: one HINCRBY per counter per batch),
and applied by a script that first checks the stored offset is still the one the filter used, then writes
everything and the new offset atomically. A redelivered batch finds its offsets applied and writes nothing;
a zombie writer after a rebalance finds the offset moved and re-reads. An event whose plan or script fails on its
values is isolated and handed to `Rejected` (`sinks.isolation`); the rest of its batch lands.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import redis
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch
from quixstreams.sinks.base.item import SinkItem

from sinks.isolation import Rejected, write_isolating
from sinks.metrics import TopicSinkMetrics, unserved
from sinks.mysql.sink import RetryPolicy
from sinks.redis.plans import Op, Plan
from state import redis_keys

logger = logging.getLogger(__name__)

# Why a write is tried again, for `jobstream_sink_retries`: Redis unavailable, or another writer moved the offset.
RETRY_REASONS = ("unavailable", "offset_moved")

_APPLY = """
local stored = redis.call('GET', KEYS[1])
if (stored or '-1') ~= ARGV[1] then return 0 end
local function apply(op)
  local kind, key = op[1], op[2]
  if kind == 'hset_newer' then
    local version = tonumber(redis.call('HGET', key, op[3]) or '-1')
    if tonumber(op[4]) > version then
      redis.call('HSET', key, op[3], op[4], unpack(op[5]))
    end
  elseif kind == 'zadd' then
    redis.call('ZADD', key, op[3], op[4])
  elseif kind == 'hincrby' then
    redis.call('HINCRBY', key, op[3], op[4])
  elseif kind == 'zincrby' then
    redis.call('ZINCRBY', key, op[3], op[4])
    redis.call('EXPIRE', key, op[5])
  elseif kind == 'publish' then
    redis.call('PUBLISH', key, op[3])
  elseif kind == 'once' then
    if redis.call('HSETNX', key, op[3], '1') == 1 then
      for _, inner in ipairs(op[4]) do apply(inner) end
    end
  else
    error('unknown op ' .. kind)
  end
end
for _, op in ipairs(cjson.decode(ARGV[3])) do apply(op) end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class RedisReadModelSink(BatchingSink):
    """Applies `plan` to each batch of one topic, exactly once per offset (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        topic: str,
        plan: Plan,
        retry: RetryPolicy,
        *,
        rejected: Rejected,
        metrics: TopicSinkMetrics | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._group = group
        self._topic = topic
        self._plan = plan
        self._retry = retry
        self._rejected = rejected
        self._metrics = metrics or unserved("redis", topic, RETRY_REASONS)
        self._script = client.register_script(_APPLY)

    def __repr__(self) -> str:
        return f"<RedisReadModelSink {self._topic}>"

    def setup(self) -> None:
        self._client.ping()

    def write(self, batch: SinkBatch) -> None:
        items = list(batch)
        started = time.perf_counter()
        try:
            write_isolating(
                items,
                batch.partition,
                lambda chunk: self.write_items(batch.topic, batch.partition, chunk),
                self._rejected,
            )
        except SinkBackpressureError:
            self._metrics.paused()
            raise
        finally:
            self._metrics.batch(len(items), time.perf_counter() - started)

    def write_items(self, topic: str, partition: int, items: Sequence[SinkItem]) -> None:
        offset_key = redis_keys.sink_offset(self._group, topic, partition)
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                if self._apply(offset_key, items):
                    self._metrics.written(len(items))
                    return
                logger.info("%r: %s moved under us (another writer); re-reading", self, offset_key)
                reason = "offset_moved"
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as error:
                if attempt == self._retry.max_attempts:
                    logger.warning("%r: Redis unavailable after %d attempts, pausing: %s", self, attempt, error)
                    raise SinkBackpressureError(retry_after=self._retry.backpressure_s) from error
                reason = "unavailable"
            if attempt < self._retry.max_attempts:
                self._metrics.retried(reason)
            time.sleep(self._retry.backoff.delay_s(attempt))
        raise SinkBackpressureError(retry_after=self._retry.backpressure_s)

    def _apply(self, offset_key: str, items: Sequence[SinkItem]) -> bool:
        raw = self._client.get(offset_key)
        applied = -1 if raw is None else int(raw)
        fresh = [item for item in items if item.offset > applied]
        if not fresh:
            return True
        ops = _summed([op for item in fresh for op in self._plan(item)])
        last = max(item.offset for item in fresh)
        applied_now: bool = self._script(keys=[offset_key], args=[str(applied), str(last), json.dumps(ops)]) == 1
        return applied_now


def _summed(ops: list[Op]) -> list[Op]:
    """Merge increments to one op per counter, keeping every other op in order."""
    merged: list[Op] = []
    totals: dict[tuple[object, ...], Op] = {}
    for op in ops:
        kind = op[0]
        if kind not in ("hincrby", "zincrby"):
            merged.append(op)
            continue
        ident = (kind, op[1], op[2] if kind == "hincrby" else op[3])
        amount_at = 3 if kind == "hincrby" else 2
        total = totals.get(ident)
        if total is None:
            totals[ident] = total = list(op)
            merged.append(total)
        else:
            total[amount_at] = str(int(str(total[amount_at])) + int(str(op[amount_at])))
    return merged
