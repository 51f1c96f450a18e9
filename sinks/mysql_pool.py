"""A bounded pool of MySQL connections (DBUtils `PooledDB`), each session in READ COMMITTED."""

from __future__ import annotations

from typing import Any

import pymysql
from dbutils.pooled_db import PooledDB

from jobstream.settings import MySQLAddress


class MySQLPool:
    """At most `size` connections; a caller beyond the cap waits for a free one. Connects on `open()`."""

    def __init__(
        self,
        address: MySQLAddress,
        size: int,
        timeout_s: int,
        lock_wait_timeout_s: int,
        database: str | None = None,
    ) -> None:
        self.address = address
        self.database = database or address.database
        self.size = size
        self._timeout_s = timeout_s
        self._lock_wait_timeout_s = lock_wait_timeout_s
        self._pool: PooledDB | None = None

    def open(self) -> None:
        """Create the pool (idempotent) and prove the server answers."""
        with self.connection() as connection:
            connection.ping()

    def connection(self) -> Any:
        """A pooled connection; closing it (or leaving its `with` block) gives it back, rolled back."""
        if self._pool is None:
            self._pool = PooledDB(
                creator=pymysql,
                maxconnections=self.size,
                maxcached=self.size,
                blocking=True,
                # Re-check a connection each time it leaves the pool: a server restart must not fail a batch.
                ping=1,
                setsession=[
                    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                    f"SET SESSION innodb_lock_wait_timeout = {self._lock_wait_timeout_s}",
                ],
                host=self.address.host,
                port=self.address.port,
                user=self.address.user,
                password=self.address.password,
                database=self.database,
                charset="utf8mb4",
                autocommit=False,
                connect_timeout=self._timeout_s,
                read_timeout=self._timeout_s,
                write_timeout=self._timeout_s,
            )
        return self._pool.connection()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
