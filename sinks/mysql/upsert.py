"""Multi-row `INSERT ... ON DUPLICATE KEY UPDATE`, the one statement every MySQL mapping writes with.

Rows go in primary-key order, so two transactions touching the same rows lock them in the same order and
cannot deadlock. Assignments in ON DUPLICATE KEY UPDATE run left to right and each sees the previous ones,
so a version column must be assigned last: `newer()` compares against the stored version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymysql.cursors import Cursor

from jobstream.clock import db_utc

Row = tuple[Any, ...]
# Rows per statement: large enough to amortize the round trip, small enough for max_allowed_packet.
_CHUNK_ROWS = 500


def newer(column: str, version: str = "version") -> str:
    """Take the incoming value only when the incoming event is newer than the stored one."""
    return f"{column} = IF(VALUES({version}) > {version}, VALUES({column}), {column})"


def latest(version: str = "version") -> str:
    return f"{version} = GREATEST({version}, VALUES({version}))"


def upsert(
    cursor: Cursor,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Row],
    key_width: int,
    updates: Sequence[str],
) -> None:
    """Upsert `rows` (their first `key_width` values are the primary key), sorted by that key."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda row: row[:key_width])
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    tail = " ON DUPLICATE KEY UPDATE " + ", ".join(updates)
    for start in range(0, len(ordered), _CHUNK_ROWS):
        chunk = ordered[start : start + _CHUNK_ROWS]
        cursor.execute(head + ", ".join([placeholders] * len(chunk)) + tail, [v for row in chunk for v in row])


def utc(moment: datetime | None) -> datetime | None:
    """A naive UTC datetime for a DATETIME column (events decode as aware datetimes)."""
    return None if moment is None else db_utc(moment)
