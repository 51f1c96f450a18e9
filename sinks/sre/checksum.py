"""A checksum of a read model: SHA-256 over its tables' rows in primary-key order.

Not `CHECKSUM TABLE`: its value depends on the server's row format and version (MariaDB changed it for
temporal columns), so it cannot compare a model across servers or after an upgrade. Hashing the rows as
read, ordered by primary key, depends only on the content, and streams, so any table size fits.
"""

from __future__ import annotations

import hashlib

import pymysql
from pymysql.cursors import SSCursor


def primary_key(connection: pymysql.Connection, table: str) -> tuple[str, ...]:
    """The columns of `table`'s primary key, in key order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND table_name = %s AND index_name = 'PRIMARY' ORDER BY seq_in_index",
            (table,),
        )
        return tuple(name for (name,) in cursor.fetchall())


def table_checksum(connection: pymysql.Connection, table: str) -> str:
    """The hash of `table`'s rows alone, not its name: a shadow table and the table it became compare equal."""
    digest = hashlib.sha256()
    key = ", ".join(f"`{name}`" for name in primary_key(connection, table))
    with connection.cursor(SSCursor) as cursor:
        cursor.execute(f"SELECT * FROM `{table}` ORDER BY {key}")
        for row in cursor:
            digest.update(b"\x1e")
            digest.update("\x1f".join("\\N" if value is None else str(value) for value in row).encode())
    return digest.hexdigest()


def model_checksum(connection: pymysql.Connection, tables: tuple[str, ...], suffix: str = "") -> str:
    """One checksum over `tables` (read from `<table><suffix>`), combined in name order."""
    digest = hashlib.sha256()
    for table in sorted(tables):
        digest.update(f"{table}={table_checksum(connection, table + suffix)};".encode())
    return digest.hexdigest()
