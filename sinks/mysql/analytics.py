"""analytics.job_minute and analytics.company_hour -> the window tables, upserted by (key, window_start).

A window re-emitted (a late event, a topology replay) replaces the row when its offset is newer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pymysql.cursors import Cursor
from quixstreams.sinks.base.item import SinkItem

from schemas.topics import ANALYTICS_COMPANY_HOUR, ANALYTICS_JOB_MINUTE
from sinks.mysql.sink import Target
from sinks.mysql.upsert import latest, newer, upsert, utc

_STATS = ("applications", "accepted", "rejected", "rejected_by_reason", "views", "conversion")


class JobWindowsMapping:
    topic = ANALYTICS_JOB_MINUTE
    tables = ("job_window_stats",)

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None:
        columns = ("job_id", "window_start", "window_end", "company_id", *_STATS, "version")
        upsert(
            cursor,
            f"job_window_stats{target.suffix}",
            columns,
            [_job_row(item) for item in items],
            key_width=2,
            updates=[*(newer(column) for column in columns[2:-1]), latest()],
        )


class CompanyWindowsMapping:
    topic = ANALYTICS_COMPANY_HOUR
    tables = ("company_window_stats",)

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None:
        columns = ("company_id", "window_start", "window_end", *_STATS, "version")
        upsert(
            cursor,
            f"company_window_stats{target.suffix}",
            columns,
            [(item.value["company_id"], *_window(item)) for item in items],
            key_width=2,
            updates=[*(newer(column) for column in columns[2:-1]), latest()],
        )


def _job_row(item: SinkItem) -> tuple[object, ...]:
    window = _window(item)
    return (item.value["job_id"], *window[:2], item.value["company_id"], *window[2:])


def _window(item: SinkItem) -> tuple[object, ...]:
    """window_start, window_end, the stats in `_STATS` order, version."""
    stats = item.value
    return (
        utc(stats["window_start"]),
        utc(stats["window_end"]),
        stats["applications"],
        stats["accepted"],
        stats["rejected"],
        # Sorted keys: the same window always serializes to the same text, so checksums compare.
        json.dumps(stats["rejected_by_reason"], sort_keys=True),
        stats["views"],
        stats["conversion"],
        item.offset,
    )
