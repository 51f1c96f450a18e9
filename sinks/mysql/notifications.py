"""notification.outcome -> notification_log: one row per notification, its newest outcome."""

from __future__ import annotations

from collections.abc import Sequence

from pymysql.cursors import Cursor
from quixstreams.sinks.base.item import SinkItem

from schemas.topics import NOTIFICATION_OUTCOME
from sinks.mysql.sink import Target
from sinks.mysql.upsert import latest, newer, upsert, utc

_COLUMNS = (
    "notification_id",
    "recipient_id",
    "channel",
    "status",
    "attempts",
    "error",
    "latency_ms",
    "occurred_at",
    "version",
)
_ERROR_MAX = 500


class NotificationsMapping:
    topic = NOTIFICATION_OUTCOME
    tables = ("notification_log",)

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None:
        upsert(
            cursor,
            f"notification_log{target.suffix}",
            _COLUMNS,
            [_row(item) for item in items],
            key_width=1,
            updates=[*(newer(column) for column in _COLUMNS[1:-1]), latest()],
        )


def _row(item: SinkItem) -> tuple[object, ...]:
    outcome = item.value
    error = outcome["error"]
    return (
        outcome["notification_id"],
        outcome["recipient_id"],
        outcome["channel"],
        outcome["status"],
        outcome["attempts"],
        None if error is None else error[:_ERROR_MAX],
        outcome["latency_ms"],
        utc(outcome["occurred_at"]),
        item.offset,
    )
