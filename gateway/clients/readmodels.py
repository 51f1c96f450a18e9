"""Reads from the MySQL read models the sinks fill: jobs, their tags, applications. The gateway never writes them.

Every query runs through the gateway's one MySQL pool (`gateway.clients.mysql`), off the event loop, behind its breaker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymysql.cursors import DictCursor

from gateway.clients.mysql import GatewayMySQL
from gateway.http.paging import Page

T = TypeVar("T")
Row = dict[str, Any]

_JOB_COLUMNS = (
    "job_id, company_id, title, description, location, remote, salary_min, salary_max, currency, status, "
    "max_applications, deadline, created_at, updated_at"
)

# The analytics reads, by name, so tests/gateway/test_analytics.py can EXPLAIN exactly what runs. Windows filter
# on window_start in [since, until); each read walks one index range (named in the comment).
_WINDOW_COLUMNS = "window_start, window_end, applications, accepted, rejected, rejected_by_reason, views, conversion"
_REJECTIONS = (
    "SELECT k.reason, SUM(CAST(JSON_VALUE(w.rejected_by_reason, CONCAT('$.\"', k.reason, '\"')) AS UNSIGNED))"
    " AS rejected FROM job_window_stats w"
    " CROSS JOIN JSON_TABLE(JSON_KEYS(w.rejected_by_reason), '$[*]' COLUMNS (reason VARCHAR(64) PATH '$')) k"
    " WHERE {scope}w.window_start >= %(since)s AND w.window_start < %(until)s AND w.rejected > 0"
    " GROUP BY k.reason ORDER BY rejected DESC, k.reason"
)
ANALYTICS_SQL = {
    # jobs PRIMARY, then job_window_stats PRIMARY (job_id prefix), job_funnel PRIMARY.
    "job_owner": (
        "SELECT (SELECT company_id FROM jobs WHERE job_id = %(job_id)s) AS from_jobs,"
        " (SELECT company_id FROM job_window_stats WHERE job_id = %(job_id)s AND company_id IS NOT NULL LIMIT 1)"
        " AS from_windows,"
        " EXISTS (SELECT 1 FROM jobs WHERE job_id = %(job_id)s)"
        " OR EXISTS (SELECT 1 FROM job_window_stats WHERE job_id = %(job_id)s)"
        " OR EXISTS (SELECT 1 FROM job_funnel WHERE job_id = %(job_id)s) AS known"
    ),
    # job_window_stats PRIMARY (job_id, window_start).
    "job_windows": (
        f"SELECT {_WINDOW_COLUMNS} FROM job_window_stats WHERE job_id = %(job_id)s"
        " AND window_start >= %(since)s AND window_start < %(until)s ORDER BY window_start LIMIT %(limit)s"
    ),
    # company_window_stats PRIMARY (company_id, window_start).
    "company_windows": (
        f"SELECT {_WINDOW_COLUMNS} FROM company_window_stats WHERE company_id = %(company_id)s"
        " AND window_start >= %(since)s AND window_start < %(until)s ORDER BY window_start LIMIT %(limit)s"
    ),
    # job_funnel PRIMARY.
    "job_funnel": (
        "SELECT applications, accepted, rejected, reviewed, interview, offer, hired, declined"
        " FROM job_funnel WHERE job_id = %(job_id)s"
    ),
    # job_window_stats PRIMARY (job_id prefix).
    "job_views": "SELECT SUM(views) AS views FROM job_window_stats WHERE job_id = %(job_id)s",
    # job_window_time (window_start, rejected), from migration 0005.
    "rejections": _REJECTIONS.format(scope=""),
    # job_window_company (company_id, window_start).
    "company_rejections": _REJECTIONS.format(scope="w.company_id = %(company_id)s AND "),
}
_FUNNEL_COLUMNS = ("applications", "accepted", "rejected", "reviewed", "interview", "offer", "hired", "declined")
_APPLICANT_COLUMNS = (
    "application_id, job_id, candidate_id, status, rejection_reason, stage, submitted_at, decided_at, updated_at"
)


def company_jobs_sql(*, status: bool, after: bool) -> str:
    """A company's jobs (optionally of one status) with their funnel counts, newest first, keyset-paged.

    jobs_company (company_id, status, created_at) finds them; job_funnel PRIMARY adds the counts.
    """
    where = ["j.company_id = %(company_id)s"]
    if status:
        where.append("j.status = %(status)s")
    if after:
        where.append("(j.created_at < %(after_at)s OR (j.created_at = %(after_at)s AND j.job_id < %(after_id)s))")
    counts = ", ".join(f"COALESCE(f.{column}, 0) AS {column}" for column in _FUNNEL_COLUMNS)
    return (
        f"SELECT {', '.join('j.' + c.strip() for c in _JOB_COLUMNS.split(','))}, {counts}"
        f" FROM jobs j LEFT JOIN job_funnel f ON f.job_id = j.job_id WHERE {' AND '.join(where)}"
        " ORDER BY j.created_at DESC, j.job_id DESC LIMIT %(limit)s"
    )


def job_applicants_sql(*, stage: bool, status: bool, newest_first: bool, after: bool) -> str:
    """One job's decided applications (optionally of one stage and status), by submission time, keyset-paged.

    applications_job_stage (job_id, stage, submitted_at) serves a stage filter in order; applications_job_status
    (job_id, status, ...) a status filter; otherwise the job_id prefix of either.
    """
    where = ["job_id = %(job_id)s", "submitted_at IS NOT NULL"]
    if stage:
        where.append("stage = %(stage)s")
    if status:
        where.append("status = %(status)s")
    direction, beyond = ("DESC", "<") if newest_first else ("ASC", ">")
    if after:
        where.append(
            f"(submitted_at {beyond} %(after_at)s"
            f" OR (submitted_at = %(after_at)s AND application_id {beyond} %(after_id)s))"
        )
    return (
        f"SELECT {_APPLICANT_COLUMNS} FROM applications WHERE {' AND '.join(where)}"
        f" ORDER BY submitted_at {direction}, application_id {direction} LIMIT %(limit)s"
    )


# applications PRIMARY, jobs PRIMARY; application_stage_history PRIMARY (application_id prefix).
APPLICATION_DETAIL_SQL = (
    f"SELECT {', '.join('a.' + c.strip() for c in _APPLICANT_COLUMNS.split(','))}, a.stage_changed_at,"
    " COALESCE(a.company_id, j.company_id) AS company_id"
    " FROM applications a LEFT JOIN jobs j ON j.job_id = a.job_id WHERE a.application_id = %(application_id)s"
)
# users PRIMARY: the applicants' display names (pymysql expands the tuple into an IN list).
USER_NAMES_SQL = "SELECT user_id, display_name FROM users WHERE user_id IN %(user_ids)s"
STAGE_HISTORY_SQL = (
    "SELECT stage, changed_at, changed_by FROM application_stage_history"
    " WHERE application_id = %(application_id)s ORDER BY changed_at, stage"
)


@dataclass(frozen=True)
class JobQuery:
    text: str | None = None
    location: str | None = None
    remote: bool | None = None
    salary_min: int | None = None
    tags: tuple[str, ...] = ()
    limit: int = 20
    offset: int = 0


class ReadModels:
    def __init__(self, mysql: GatewayMySQL) -> None:
        self._mysql = mysql

    async def ping(self) -> None:
        await self._run(lambda cursor: cursor.execute("SELECT 1"))

    async def job(self, job_id: str) -> Row | None:
        def query(cursor: DictCursor) -> Row | None:
            cursor.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = %s", (job_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute("SELECT tag FROM job_tags WHERE job_id = %s ORDER BY tag", (job_id,))
            return _job(row, [r["tag"] for r in cursor.fetchall()])

        return await self._run(query)

    async def open_jobs(self, job_ids: list[str]) -> dict[str, Row]:
        """The open jobs among `job_ids`, by id (PRIMARY lookups)."""
        if not job_ids:
            return {}

        def query(cursor: DictCursor) -> dict[str, Row]:
            marks = ", ".join(["%s"] * len(job_ids))
            cursor.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id IN ({marks}) AND status = 'open'", job_ids)
            rows = cursor.fetchall()
            tags = _tags_of(cursor, rows)
            return {row["job_id"]: _job(row, tags.get(row["job_id"], [])) for row in rows}

        return await self._run(query)

    async def application_with_company(self, application_id: str) -> Row | None:
        """The application and the company owning its job (None when the job is not in the read model yet)."""

        def query(cursor: DictCursor) -> Row | None:
            cursor.execute(
                "SELECT a.application_id, a.job_id, a.candidate_id, a.status, a.stage, j.company_id "
                "FROM applications a LEFT JOIN jobs j ON j.job_id = a.job_id WHERE a.application_id = %s",
                (application_id,),
            )
            return cursor.fetchone()

        return await self._run(query)

    async def candidate_applications(self, candidate_id: str, limit: int, offset: int) -> list[Row]:
        def query(cursor: DictCursor) -> list[Row]:
            cursor.execute(
                "SELECT application_id, job_id, status, rejection_reason, stage, submitted_at, decided_at, "
                "updated_at FROM applications WHERE candidate_id = %s "
                "ORDER BY submitted_at DESC, application_id LIMIT %s OFFSET %s",
                (candidate_id, limit, offset),
            )
            return [_plain(row) for row in cursor.fetchall()]

        return await self._run(query)

    async def search_jobs(self, q: JobQuery) -> list[Row]:
        """Open jobs matching every given filter, the best text match (or the newest) first."""
        where = ["j.status = 'open'"]
        params: list[Any] = []
        order = "j.created_at DESC, j.job_id"
        if q.text:
            where.append("MATCH (j.title, j.description) AGAINST (%s IN NATURAL LANGUAGE MODE)")
            params.append(q.text)
        if q.location:
            where.append("j.location = %s")
            params.append(q.location)
        if q.remote is not None:
            where.append("j.remote = %s")
            params.append(q.remote)
        if q.salary_min is not None:
            where.append("j.salary_max >= %s")
            params.append(q.salary_min)
        if q.tags:
            placeholders = ", ".join(["%s"] * len(q.tags))
            where.append(
                f"j.job_id IN (SELECT job_id FROM job_tags WHERE tag IN ({placeholders}) "
                "GROUP BY job_id HAVING COUNT(*) = %s)"
            )
            params.extend(q.tags)
            params.append(len(q.tags))
        select = f"SELECT {', '.join('j.' + c.strip() for c in _JOB_COLUMNS.split(','))}"
        if q.text:
            select += ", MATCH (j.title, j.description) AGAINST (%s IN NATURAL LANGUAGE MODE) AS score"
            params.insert(0, q.text)
            order = "score DESC, j.created_at DESC, j.job_id"
        sql = f"{select} FROM jobs j WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %s OFFSET %s"
        params.extend([q.limit, q.offset])

        def query(cursor: DictCursor) -> list[Row]:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            tags = _tags_of(cursor, rows)
            for row in rows:
                row.pop("score", None)
            return [_job(row, tags.get(row["job_id"], [])) for row in rows]

        return await self._run(query)

    async def company_jobs(self, company_id: str, status: str | None, page: Page) -> list[Row]:
        """The company's jobs, newest first, each with `counts` (its funnel: zeros before any decision)."""
        params: dict[str, Any] = {"company_id": company_id, "status": status, "limit": page.limit}
        if page.after is not None:
            params["after_at"], params["after_id"] = page.after
        sql = company_jobs_sql(status=status is not None, after=page.after is not None)

        def query(cursor: DictCursor) -> list[Row]:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            tags = _tags_of(cursor, rows)
            jobs = []
            for row in rows:
                counts = {column: int(row.pop(column)) for column in _FUNNEL_COLUMNS}
                jobs.append({**_job(row, tags.get(row["job_id"], [])), "counts": counts})
            return jobs

        return await self._run(query)

    async def job_applicants(
        self, job_id: str, *, stage: str | None, status: str | None, newest_first: bool, page: Page
    ) -> list[Row]:
        params: dict[str, Any] = {"job_id": job_id, "stage": stage, "status": status, "limit": page.limit}
        if page.after is not None:
            params["after_at"], params["after_id"] = page.after
        sql = job_applicants_sql(
            stage=stage is not None, status=status is not None, newest_first=newest_first, after=page.after is not None
        )

        def query(cursor: DictCursor) -> list[Row]:
            cursor.execute(sql, params)
            applicants = [_plain(row) for row in cursor.fetchall()]
            names = _names_of(cursor, [row["candidate_id"] for row in applicants])
            return [{**row, "candidate_name": names.get(row["candidate_id"])} for row in applicants]

        return await self._run(query)

    async def application_detail(self, application_id: str) -> Row | None:
        """The decided application with its job's company and its stage history (oldest first), or None."""

        def query(cursor: DictCursor) -> Row | None:
            cursor.execute(APPLICATION_DETAIL_SQL, {"application_id": application_id})
            row = cursor.fetchone()
            if row is None or row["submitted_at"] is None:
                return None
            cursor.execute(STAGE_HISTORY_SQL, {"application_id": application_id})
            return {**_plain(row), "history": [_plain(step) for step in cursor.fetchall()]}

        return await self._run(query)

    async def job_owner(self, job_id: str) -> Row | None:
        """`{"company_id"}` of a job known to the jobs or analytics read models (company may be None), else None."""

        def query(cursor: DictCursor) -> Row | None:
            cursor.execute(ANALYTICS_SQL["job_owner"], {"job_id": job_id})
            row = cursor.fetchone()
            if row is None or not row["known"]:
                return None
            return {"company_id": row["from_jobs"] or row["from_windows"]}

        return await self._run(query)

    async def job_windows(self, job_id: str, since: datetime, until: datetime, limit: int) -> list[Row]:
        """The job's 1-minute windows starting in [since, until), oldest first, at most `limit`."""
        params = {"job_id": job_id, "since": since, "until": until, "limit": limit}
        return await self._run(lambda cursor: _windows(cursor, ANALYTICS_SQL["job_windows"], params))

    async def company_windows(self, company_id: str, since: datetime, until: datetime, limit: int) -> list[Row]:
        """The company's hopping 1-hour windows starting in [since, until), oldest first, at most `limit`."""
        params = {"company_id": company_id, "since": since, "until": until, "limit": limit}
        return await self._run(lambda cursor: _windows(cursor, ANALYTICS_SQL["company_windows"], params))

    async def job_funnel(self, job_id: str) -> Row:
        """The job's funnel row (zeros when it has none yet) and its views summed over every closed window."""

        def query(cursor: DictCursor) -> Row:
            cursor.execute(ANALYTICS_SQL["job_funnel"], {"job_id": job_id})
            funnel = cursor.fetchone() or {}
            cursor.execute(ANALYTICS_SQL["job_views"], {"job_id": job_id})
            views = cursor.fetchone()
            counts = {column: int(funnel.get(column) or 0) for column in _FUNNEL_COLUMNS}
            return {"views": int(views["views"] or 0) if views else 0, **counts}

        return await self._run(query)

    async def rejections(self, since: datetime, until: datetime, company_id: str | None) -> dict[str, int]:
        """Rejections by reason over the job windows starting in [since, until), of one company or of all."""
        sql = ANALYTICS_SQL["company_rejections" if company_id else "rejections"]
        params = {"since": since, "until": until, "company_id": company_id}

        def query(cursor: DictCursor) -> dict[str, int]:
            cursor.execute(sql, params)
            return {row["reason"]: int(row["rejected"]) for row in cursor.fetchall()}

        return await self._run(query)

    async def _run(self, query: Callable[[DictCursor], T]) -> T:
        return await self._mysql.read(query)


def _tags_of(cursor: DictCursor, jobs: Sequence[Row]) -> dict[str, list[str]]:
    """The tags of each of `jobs` (by job id, each list sorted), in one query; none without jobs."""
    tags: dict[str, list[str]] = {}
    if not jobs:
        return tags
    ids = [job["job_id"] for job in jobs]
    cursor.execute(
        f"SELECT job_id, tag FROM job_tags WHERE job_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY tag", ids
    )
    for row in cursor.fetchall():
        tags.setdefault(row["job_id"], []).append(row["tag"])
    return tags


def _names_of(cursor: DictCursor, user_ids: Sequence[str]) -> dict[str, str]:
    """The display names of `user_ids`, in one query; an unknown user has none."""
    if not user_ids:
        return {}
    cursor.execute(USER_NAMES_SQL, {"user_ids": tuple(sorted(set(user_ids)))})
    return {row["user_id"]: row["display_name"] for row in cursor.fetchall()}


def _windows(cursor: DictCursor, sql: str, params: dict[str, Any]) -> list[Row]:
    cursor.execute(sql, params)
    rows = cursor.fetchall()
    for row in rows:
        # Window bounds always with milliseconds, the precision they are stored with and paged by.
        for bound in ("window_start", "window_end"):
            row[bound] = row[bound].isoformat(timespec="milliseconds") + "Z"
        row["rejected_by_reason"] = json.loads(row["rejected_by_reason"])
    return rows


def _job(row: Row, tags: list[str]) -> Row:
    job = _plain(row)
    job["remote"] = bool(job["remote"])
    job["tags"] = tags
    return job


def _plain(row: Row) -> Row:
    """A row as JSON-ready values: datetimes (stored in UTC) become ISO 8601 strings with a Z."""
    return {
        key: value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
        for key, value in row.items()
    }
