"""application.stage_changed -> applications (current stage) and application_stage_history.

The stage moves only forward in this topic's offsets (`stage_version`). A stage that lands before its
application's decision creates the row with the decision fields empty; the decision fills them later.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymysql.cursors import Cursor
from quixstreams.sinks.base.item import SinkItem

from schemas.topics import APPLICATION_STAGE_CHANGED
from sinks.mysql.funnel import refresh_funnel
from sinks.mysql.sink import Target
from sinks.mysql.upsert import latest, newer, upsert, utc


class StagesMapping:
    topic = APPLICATION_STAGE_CHANGED
    tables = ("applications", "application_stage_history", "job_funnel")

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None:
        upsert(
            cursor,
            f"applications{target.suffix}",
            ("application_id", "job_id", "stage", "stage_changed_at", "updated_at", "stage_version"),
            [
                (
                    item.value["application_id"],
                    item.value["job_id"],
                    item.value["stage"],
                    utc(item.value["changed_at"]),
                    utc(item.value["changed_at"]),
                    item.offset,
                )
                for item in items
            ],
            key_width=1,
            updates=[
                newer("stage", "stage_version"),
                newer("stage_changed_at", "stage_version"),
                "updated_at = GREATEST(updated_at, VALUES(updated_at))",
                latest("stage_version"),
            ],
        )
        upsert(
            cursor,
            f"application_stage_history{target.suffix}",
            ("application_id", "stage", "changed_at", "changed_by"),
            [
                (
                    item.value["application_id"],
                    item.value["stage"],
                    utc(item.value["changed_at"]),
                    item.value["changed_by"],
                )
                for item in items
            ],
            key_width=2,
            # A stage entered twice keeps its first entry, whichever event arrives first.
            updates=[
                "changed_by = IF(VALUES(changed_at) < changed_at, VALUES(changed_by), changed_by)",
                "changed_at = LEAST(changed_at, VALUES(changed_at))",
            ],
        )
        if target.derive:
            refresh_funnel(cursor, (item.value["job_id"] for item in items), target.suffix)
