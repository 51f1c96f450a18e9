"""The gateway's one MySQL pool, called from the event loop: reads of the read models and account transactions.

pymysql blocks, so each call runs on a thread pool exactly as large as the connection pool: a slow database holds
those threads, never the event loop, and the circuit breaker turns a dead one into fast 503s. Reads and accounts
share the pool, so `JOBSTREAM_GATEWAY_MYSQL_POOL_SIZE` is the most connections one gateway ever opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pymysql.cursors import DictCursor

from jobstream.breaker import CircuitBreaker
from jobstream.mysql import MySQLPool
from jobstream.settings import MySQLAddress

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 2
_QUERY_TIMEOUT_S = 5


class GatewayMySQL:
    """`read` and `transaction` on the pool's threads, behind the breaker; `in_use`: calls running or queued."""

    def __init__(self, address: MySQLAddress, size: int, breaker: CircuitBreaker) -> None:
        self.pool = MySQLPool(address, size, timeout_s=_QUERY_TIMEOUT_S, connect_timeout_s=_CONNECT_TIMEOUT_S)
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="mysql")
        self._breaker = breaker
        self.in_use = 0

    async def read(self, query: Callable[[DictCursor], T]) -> T:
        """One or more statements on one connection, rolled back when it goes back to the pool."""

        def work() -> T:
            with self.pool.connection() as connection, connection.cursor(DictCursor) as cursor:
                return query(cursor)

        return await self._call(work)

    async def transaction(self, work: Callable[[DictCursor], T]) -> T:
        """`work` in one transaction: committed if it returns, rolled back if it raises."""

        def transaction() -> T:
            with self.pool.connection() as connection:
                try:
                    with connection.cursor(DictCursor) as cursor:
                        result = work(cursor)
                    connection.commit()
                    return result
                except BaseException:
                    connection.rollback()
                    raise

        return await self._call(transaction)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.pool.close()

    async def _call(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        # Counted on the loop's thread, so no lock.
        self.in_use += 1
        try:
            return await self._breaker.call(lambda: loop.run_in_executor(self._executor, work))
        finally:
            self.in_use -= 1
