"""A generic batched upsert sink for MySQL read models, on Quix Streams' `BatchingSink`.

Each batch (one topic partition between two checkpoints) is one short READ COMMITTED transaction in which
a `Mapping` turns the batch's events into multi-row upserts. Deadlocks, lock wait timeouts and lost
connections are retried with jittered exponential backoff; when MySQL stays down or slow, the sink raises
`SinkBackpressureError` so Quix pauses the partitions and re-reads the batch later instead of buffering. An event
whose values MySQL refuses is isolated and handed to `Rejected` (`sinks.isolation`); the rest of its batch lands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pymysql
from pymysql.cursors import Cursor
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch
from quixstreams.sinks.base.item import SinkItem

from jobstream.backoff import Backoff
from jobstream.mysql import MySQLPool
from jobstream.settings import SinkSettings
from sinks.isolation import Rejected, write_isolating
from sinks.metrics import TopicSinkMetrics, unserved

logger = logging.getLogger(__name__)

# Lock wait timeout, deadlock: the transaction was rolled back and can simply run again.
_CONFLICTS = frozenset({1205, 1213})
# Too many connections, server shutting down, cannot connect, server gone, connection lost (or timed out).
_UNAVAILABLE = frozenset({1040, 1053, 2002, 2003, 2006, 2013})
# Why a write is tried again: a conflict (_CONFLICTS) or MySQL unavailable (_UNAVAILABLE), for `jobstream_sink_retries`.
RETRY_REASONS = ("conflict", "unavailable")


@dataclass(frozen=True)
class Target:
    """Which tables a mapping writes, and when the tables derived from them are recomputed.

    `suffix` names the tables (``__shadow`` in a replay). With `derive`, each batch's transaction also recomputes
    the derived rows it touches (job_funnel), as the live sink must; a replay writes with derive=False and rebuilds
    every derived row once, after its last batch (`sinks.mysql.funnel.refresh_every_funnel`).
    """

    suffix: str = ""
    derive: bool = True


LIVE = Target()


class Mapping(Protocol):
    """Turns one topic's events into upserts into `target`'s tables."""

    @property
    def topic(self) -> str: ...

    @property
    def tables(self) -> tuple[str, ...]: ...

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """A batch write's attempts, with `backoff` between them; past the last, pause for `backpressure_s`."""

    max_attempts: int
    backoff: Backoff
    backpressure_s: float

    @classmethod
    def from_settings(cls, sinks: SinkSettings) -> RetryPolicy:
        return cls(
            max_attempts=sinks.max_attempts,
            backoff=Backoff(base_s=sinks.backoff_base_ms / 1000, cap_s=sinks.backoff_cap_ms / 1000),
            backpressure_s=sinks.backpressure_s,
        )


class MySQLUpsertSink(BatchingSink):
    """Writes each batch of `mapping.topic` through `mapping` in one transaction on a pooled connection."""

    def __init__(
        self,
        pool: MySQLPool,
        mapping: Mapping,
        retry: RetryPolicy,
        *,
        rejected: Rejected,
        target: Target = LIVE,
        metrics: TopicSinkMetrics | None = None,
    ) -> None:
        super().__init__()
        self._pool = pool
        self._mapping = mapping
        self._retry = retry
        self._rejected = rejected
        self._target = target
        self._metrics = metrics or unserved("mysql", mapping.topic, RETRY_REASONS)

    def __repr__(self) -> str:
        return f"<MySQLUpsertSink {self._mapping.topic} -> {', '.join(self._mapping.tables)}{self._target.suffix}>"

    def setup(self) -> None:
        self._pool.open()

    def write(self, batch: SinkBatch) -> None:
        self.write_batch(batch.partition, list(batch))

    def write_batch(self, partition: int, items: Sequence[SinkItem]) -> None:
        """`items` of one partition, in transactions of `write_items`, refused events set aside (`sinks.isolation`)."""
        started = time.perf_counter()
        try:
            write_isolating(items, partition, self.write_items, self._rejected)
        except SinkBackpressureError:
            self._metrics.paused()
            raise
        finally:
            self._metrics.batch(len(items), time.perf_counter() - started)

    def write_items(self, items: Sequence[SinkItem]) -> None:
        """One transaction for `items`, retried on conflicts; backpressure once the attempts run out."""
        if not items:
            return
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                self._transaction(items)
                self._metrics.written(len(items))
                return
            except pymysql.MySQLError as error:
                code = error.args[0] if error.args and isinstance(error.args[0], int) else None
                # InterfaceError: the pool handed back a connection that died with the server (code 0).
                unavailable = code in _UNAVAILABLE or isinstance(error, pymysql.InterfaceError)
                if code not in _CONFLICTS and not unavailable:
                    raise
                if attempt == self._retry.max_attempts:
                    logger.warning("%r: MySQL error %s after %d attempts, pausing: %s", self, code, attempt, error)
                    raise SinkBackpressureError(retry_after=self._retry.backpressure_s) from error
                self._metrics.retried("unavailable" if unavailable else "conflict")
                time.sleep(self._retry.backoff.delay_s(attempt))

    def _transaction(self, items: Sequence[SinkItem]) -> None:
        with self._pool.connection() as connection:
            connection.begin()
            try:
                with connection.cursor() as cursor:
                    self._mapping.write(cursor, items, self._target)
                connection.commit()
            except BaseException:
                _rollback_quietly(connection)
                raise


def _rollback_quietly(connection: pymysql.Connection) -> None:
    # The connection may be the thing that failed; the original error is the one worth raising.
    try:
        connection.rollback()
    except pymysql.MySQLError:
        logger.debug("rollback failed on a broken connection", exc_info=True)
