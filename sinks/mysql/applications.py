"""application.decided -> applications: the platform's decision, exactly one per application.

Decision fields follow `version` (this topic's offset); the stage fields belong to `sinks.mysql.stages`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymysql.cursors import Cursor
from quixstreams.sinks.base.item import SinkItem

from schemas.topics import APPLICATION_DECIDED
from sinks.mysql.funnel import refresh_funnel
from sinks.mysql.sink import Target
from sinks.mysql.upsert import latest, newer, upsert, utc

_COLUMNS = (
    "application_id",
    "job_id",
    "company_id",
    "candidate_id",
    "status",
    "rejection_reason",
    "submitted_at",
    "decided_at",
    "updated_at",
    "version",
)
# application_id too: a candidate may apply again after a `job_unknown` rejection, and the row for their
# (job, candidate) must then follow the newest decision whichever order a batch sorts the two into.
_VERSIONED = (
    "application_id",
    "job_id",
    "company_id",
    "candidate_id",
    "status",
    "rejection_reason",
    "submitted_at",
    "decided_at",
)


class DecisionsMapping:
    topic = APPLICATION_DECIDED
    tables = ("applications", "job_funnel")

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None:
        upsert(
            cursor,
            f"applications{target.suffix}",
            _COLUMNS,
            [_row(item) for item in items],
            key_width=1,
            updates=[
                *(newer(column) for column in _VERSIONED),
                "updated_at = GREATEST(updated_at, VALUES(updated_at))",
                latest(),
            ],
        )
        if target.derive:
            refresh_funnel(cursor, (item.value["job_id"] for item in items), target.suffix)


def _row(item: SinkItem) -> tuple[object, ...]:
    decision = item.value
    decided_at = utc(decision["decided_at"])
    return (
        decision["application_id"],
        decision["job_id"],
        decision["company_id"],
        decision["candidate_id"],
        decision["outcome"],
        decision["reason"],
        utc(decision["submitted_at"]),
        decided_at,
        decided_at,
        item.offset,
    )
