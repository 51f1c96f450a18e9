"""The one MySQL connection pool every process uses (DBUtils `PooledDB`): hard-capped, each session READ COMMITTED.

A caller beyond the cap waits for a free connection, so the database never sees more connections than the pool
allows, however many threads ask.
"""

from __future__ import annotations

from typing import Any

import pymysql
from dbutils.pooled_db import PooledDB

from jobstream.settings import MySQLAddress


class MySQLPool:
    """At most `size` connections to `database` (the address's by default). Connects lazily, or on `open()`."""

    def __init__(
        self,
        address: MySQLAddress,
        size: int,
        *,
        timeout_s: float = 5,
        connect_timeout_s: float | None = None,
        lock_wait_timeout_s: int | None = None,
        database: str | None = None,
    ) -> None:
        self.address = address
        self.database = database or address.database
        self.size = size
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s if connect_timeout_s is not None else timeout_s
        self._session = ["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"]
        if lock_wait_timeout_s is not None:
            self._session.append(f"SET SESSION innodb_lock_wait_timeout = {int(lock_wait_timeout_s)}")
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
                # Re-check a connection each time it leaves the pool: a server restart must not fail the next call.
                ping=1,
                setsession=self._session,
                host=self.address.host,
                port=self.address.port,
                user=self.address.user,
                password=self.address.password,
                database=self.database,
                charset="utf8mb4",
                autocommit=False,
                connect_timeout=self._connect_timeout_s,
                read_timeout=self._timeout_s,
                write_timeout=self._timeout_s,
            )
        return self._pool.connection()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
