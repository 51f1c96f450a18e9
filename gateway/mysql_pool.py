"""The gateway's MySQL connection pools: hard-capped, so the database never sees more than the pool allows."""

from __future__ import annotations

import pymysql
from dbutils.pooled_db import PooledDB

from jobstream.settings import MySQLAddress


def create_mysql_pool(address: MySQLAddress, max_connections: int, *, autocommit: bool = False) -> PooledDB:
    """A pool that never opens more than `max_connections` connections, READ COMMITTED, with short timeouts."""
    return PooledDB(
        creator=pymysql,
        maxconnections=max_connections,
        blocking=True,
        host=address.host,
        port=address.port,
        user=address.user,
        password=address.password,
        database=address.database,
        charset="utf8mb4",
        autocommit=autocommit,
        connect_timeout=2,
        read_timeout=5,
        write_timeout=5,
        init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    )
