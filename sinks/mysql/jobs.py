"""job.lifecycle -> jobs and job_tags: each event carries the whole job, the newest offset wins."""

from __future__ import annotations

from collections.abc import Sequence

from pymysql.cursors import Cursor
from quixstreams.sinks.base.item import SinkItem

from schemas.topics import JOB_LIFECYCLE
from sinks.mysql.sink import Target
from sinks.mysql.upsert import latest, newer, upsert, utc

_COLUMNS = (
    "job_id",
    "company_id",
    "title",
    "description",
    "location",
    "remote",
    "salary_min",
    "salary_max",
    "currency",
    "status",
    "max_applications",
    "deadline",
    "created_at",
    "updated_at",
    "version",
)
_VERSIONED = (*_COLUMNS[1:12], "updated_at")
_TAG_MAX = 40


class JobsMapping:
    topic = JOB_LIFECYCLE
    tables = ("jobs", "job_tags")

    def write(self, cursor: Cursor, items: Sequence[SinkItem], target: Target) -> None:
        jobs, tags = f"jobs{target.suffix}", f"job_tags{target.suffix}"
        upsert(
            cursor,
            jobs,
            _COLUMNS,
            [_job_row(item) for item in items],
            key_width=1,
            # created_at is the earliest event seen, whatever order the events arrive in.
            updates=[
                *(newer(column) for column in _VERSIONED),
                "created_at = LEAST(created_at, VALUES(created_at))",
                latest(),
            ],
        )
        _replace_tags(cursor, jobs, tags, items)


def _job_row(item: SinkItem) -> tuple[object, ...]:
    job = item.value
    occurred_at = utc(job["occurred_at"])
    return (
        job["job_id"],
        job["company_id"],
        job["title"],
        job["description"],
        job["location"],
        job["remote"],
        job["salary_min"],
        job["salary_max"],
        job["currency"],
        "closed" if job["kind"] == "closed" else "open",
        job["max_applications"],
        utc(job["deadline"]),
        occurred_at,
        occurred_at,
        item.offset,
    )


def _replace_tags(cursor: Cursor, jobs: str, tags: str, items: Sequence[SinkItem]) -> None:
    """Give each job the tags of its newest event, for the jobs whose stored version is this batch's."""
    newest: dict[str, SinkItem] = {}
    for item in items:
        current = newest.get(item.value["job_id"])
        if current is None or item.offset > current.offset:
            newest[item.value["job_id"]] = item
    job_ids = sorted(newest)
    # The upsert above holds these rows' locks, so no other writer changes their version before commit.
    cursor.execute(f"SELECT job_id, version FROM {jobs} WHERE job_id IN %s", (job_ids,))
    won = sorted(job_id for job_id, version in cursor.fetchall() if version == newest[job_id].offset)
    if not won:
        return
    cursor.execute(f"DELETE FROM {tags} WHERE job_id IN %s", (won,))
    rows = {(tag, job_id) for job_id in won for tag in _normalized(newest[job_id].value["tags"])}
    upsert(cursor, tags, ("tag", "job_id"), list(rows), key_width=2, updates=["job_id = VALUES(job_id)"])


def _normalized(tags: Sequence[str]) -> set[str]:
    return {tag.strip().lower()[:_TAG_MAX] for tag in tags if tag.strip()}
