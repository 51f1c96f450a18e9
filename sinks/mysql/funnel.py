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
    jobs = sorted(set(job_ids))
    if not jobs:
        return
    funnel, applications, history = f"job_funnel{suffix}", f"applications{suffix}", f"application_stage_history{suffix}"
    upsert(cursor, funnel, ("job_id",), [(job_id,) for job_id in jobs], key_width=1, updates=["job_id = job_id"])
    reached = ", ".join(f"SUM(h.stage = '{stage}') AS {stage}" for stage in _STAGES)
    cursor.execute(
        f"INSERT INTO {funnel} (job_id, applications, accepted, rejected, {', '.join(_STAGES)})"
        " SELECT d.job_id, d.applications, d.accepted, d.rejected,"
        f" {', '.join(f'COALESCE(s.{stage}, 0)' for stage in _STAGES)}"
        " FROM (SELECT job_id, SUM(status <> 'pending') AS applications, SUM(status = 'accepted') AS accepted,"
        f" SUM(status = 'rejected') AS rejected FROM {applications} WHERE job_id IN %(jobs)s GROUP BY job_id) d"
        f" LEFT JOIN (SELECT a.job_id, {reached} FROM {applications} a"
        f" JOIN {history} h ON h.application_id = a.application_id"
        " WHERE a.job_id IN %(jobs)s GROUP BY a.job_id) s ON s.job_id = d.job_id"
        " ON DUPLICATE KEY UPDATE applications = VALUES(applications), accepted = VALUES(accepted),"
        f" rejected = VALUES(rejected), {', '.join(f'{stage} = VALUES({stage})' for stage in _STAGES)}",
        {"jobs": jobs},
    )
