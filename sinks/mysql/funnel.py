"""job_funnel: per job, decided applications and how many reached each stage, recomputed not counted.

Counting (+1 per event) would double on a redelivery; recomputing from the rows just written is idempotent.
The job_funnel rows are locked first, in job order, so two sinks refreshing one job take turns and the
second one's recompute (a new READ COMMITTED snapshot per statement) sees the first one's commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymysql.cursors import Cursor

from sinks.mysql.upsert import upsert

_STAGES = ("reviewed", "interview", "offer", "hired", "declined")


def refresh_funnel(cursor: Cursor, job_ids: Iterable[str], suffix: str) -> None:
    """Recompute the funnel rows of `job_ids` (the live sink, after each batch, in its transaction)."""
    jobs = sorted(set(job_ids))
    if not jobs:
        return
    upsert(
        cursor,
        f"job_funnel{suffix}",
        ("job_id",),
        [(job_id,) for job_id in jobs],
        key_width=1,
        updates=["job_id = job_id"],
    )
    cursor.execute(_recompute(suffix, "WHERE job_id IN %(jobs)s", "WHERE a.job_id IN %(jobs)s"), {"jobs": jobs})


def refresh_every_funnel(cursor: Cursor, suffix: str) -> None:
    """Recompute every job's funnel row in one statement (a replay, once, after its last batch).

    Per batch, each recompute reads every application of the batch's jobs so far: over a whole topic that is
    quadratic in applications per job. Once at the end, it is one pass over the tables.
    """
    cursor.execute(_recompute(suffix, "", ""))


def _recompute(suffix: str, where_applications: str, where_joined: str) -> str:
    funnel, applications, history = f"job_funnel{suffix}", f"applications{suffix}", f"application_stage_history{suffix}"
    reached = ", ".join(f"SUM(h.stage = '{stage}') AS {stage}" for stage in _STAGES)
    return (
        f"INSERT INTO {funnel} (job_id, applications, accepted, rejected, {', '.join(_STAGES)})"
        " SELECT d.job_id, d.applications, d.accepted, d.rejected,"
        f" {', '.join(f'COALESCE(s.{stage}, 0)' for stage in _STAGES)}"
        " FROM (SELECT job_id, SUM(status <> 'pending') AS applications, SUM(status = 'accepted') AS accepted,"
        f" SUM(status = 'rejected') AS rejected FROM {applications} {where_applications} GROUP BY job_id) d"
        f" LEFT JOIN (SELECT a.job_id, {reached} FROM {applications} a"
        f" JOIN {history} h ON h.application_id = a.application_id"
        f" {where_joined} GROUP BY a.job_id) s ON s.job_id = d.job_id"
        " ON DUPLICATE KEY UPDATE applications = VALUES(applications), accepted = VALUES(accepted),"
        f" rejected = VALUES(rejected), {', '.join(f'{stage} = VALUES({stage})' for stage in _STAGES)}"
    )
