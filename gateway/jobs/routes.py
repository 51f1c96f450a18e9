"""Jobs: employers create, update and close them (job.lifecycle, the whole job in each event); anyone searches
and reads them from the read model, through the Redis caches."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.clients.cache import SwrCache
from gateway.clients.producer import EventProducer
from gateway.clients.readmodels import JobQuery, ReadModels
from gateway.http.errors import ApiError, Unavailable
from gateway.http.guards import page_params, require_role
from gateway.http.paging import next_cursor, page_from
from gateway.http.principal import Principal, Role
from gateway.http.validation import (
    Boolean,
    Field,
    Integer,
    Text,
    TextList,
    Timestamp,
    check_object,
    only_params,
    query_choice,
    query_int,
    read_json,
    uuid_param,
)
from gateway.jobs.live import LiveJobStats
from gateway.jobs.store import Job, JobStore
from jobstream.clock import from_epoch_ms, iso_ms, iso_to_epoch_ms, utc_now
from schemas.topics import JOB_LIFECYCLE, JOB_VIEWED
from state.redis_keys import TRENDING_BUCKET_TTL_S

_INT_MAX = 2**31 - 1
_TAG = Text(1, 40, re.compile(r"^[a-z0-9][a-z0-9+#.\-]*$"), "lowercase letters, digits and + # . -", multiline=False)
# Trending buckets are hourly and expire after TRENDING_BUCKET_TTL_S: a wider span would read expired hours.
TRENDING_MAX_HOURS = TRENDING_BUCKET_TTL_S // 3600
QUERY_TEXT = Text(1, 200, multiline=False)
QUERY_LOCATION = Text(1, 120, multiline=False)
JOB_FIELDS = {
    "title": Field(Text(1, 200, multiline=False)),
    "description": Field(Text(1, 10_000, multiline=True)),
    "location": Field(Text(1, 120, multiline=False)),
    "remote": Field(Boolean(), required=False),
    "salary_min": Field(Integer(0, _INT_MAX), required=False, nullable=True),
    "salary_max": Field(Integer(0, _INT_MAX), required=False, nullable=True),
    "currency": Field(
        Text(3, 3, re.compile(r"^[A-Z]{3}$"), "an ISO 4217 code such as EUR", multiline=False), False, True
    ),
    "tags": Field(TextList(_TAG, max_items=20), required=False),
    "max_applications": Field(Integer(1, 1_000_000), required=False, nullable=True),
    "deadline": Field(Timestamp(), required=False, nullable=True),
}
_DEFAULTS: dict[str, Any] = {
    "remote": False,
    "salary_min": None,
    "salary_max": None,
    "currency": None,
    "tags": [],
    "max_applications": None,
    "deadline": None,
}


class JobRoutes:
    def __init__(
        self,
        producer: EventProducer,
        store: JobStore,
        read_models: ReadModels,
        search_cache: SwrCache,
        detail_cache: SwrCache,
        live: LiveJobStats,
        trending_cache: SwrCache,
        *,
        max_body_bytes: int,
        lock_ms: int,
    ) -> None:
        self._producer = producer
        self._store = store
        self._read_models = read_models
        self._search_cache = search_cache
        self._detail_cache = detail_cache
        self._live = live
        self._trending_cache = trending_cache
        self._max_body_bytes = max_body_bytes
        self._lock_ms = lock_ms

    def routes(self) -> list[Route]:
        return [
            Route("/v1/jobs", self.create, methods=["POST"]),
            Route("/v1/jobs", self.search, methods=["GET"]),
            # Before /v1/jobs/{job_id}, which would take "trending" for an id.
            Route("/v1/jobs/trending", self.trending, methods=["GET"]),
            Route("/v1/jobs/{job_id}", self.update, methods=["PATCH"]),
            Route("/v1/jobs/{job_id}", self.detail, methods=["GET"]),
            Route("/v1/jobs/{job_id}/close", self.close, methods=["POST"]),
            Route("/v1/me/jobs", self.company_jobs, methods=["GET"]),
        ]

    async def company_jobs(self, request: Request) -> JSONResponse:
        """The calling employer's company's jobs, newest first, with their funnel counts."""
        employer = _employer(request)
        only_params(request, ("status", "limit", "cursor"))
        status = query_choice(request, "status", ("open", "closed"))
        page = page_from(request)
        jobs = await self._read_models.company_jobs(str(employer.company_id), status, page)
        cursor = next_cursor(jobs, page, at="created_at", row_id="job_id")
        return JSONResponse({"items": jobs, "limit": page.limit, "next_cursor": cursor})

    async def create(self, request: Request) -> JSONResponse:
        employer = _employer(request)
        fields = check_object(await read_json(request, self._max_body_bytes), JOB_FIELDS)
        now = iso_ms(utc_now())
        job: Job = {
            "job_id": str(uuid.uuid4()),
            "company_id": employer.company_id,
            **_DEFAULTS,
            **fields,
            "status": "open",
            "created_at": now,
            "updated_at": now,
        }
        job["deadline"] = _deadline_iso(fields.get("deadline"))
        _check_salary(job)
        await self._publish("created", job, employer)
        return JSONResponse(job, status_code=202)

    async def update(self, request: Request) -> JSONResponse:
        employer = _employer(request)
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        fields = check_object(await read_json(request, self._max_body_bytes), JOB_FIELDS, partial=True)
        if "deadline" in fields:
            fields["deadline"] = _deadline_iso(fields["deadline"])
        return await self._change(job_id, employer, "updated", fields)

    async def close(self, request: Request) -> JSONResponse:
        employer = _employer(request)
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        return await self._change(job_id, employer, "closed", {"status": "closed"})

    async def search(self, request: Request) -> JSONResponse:
        limit, offset = page_params(request)
        query = _job_query(request, limit, offset)
        key = hashlib.sha256(json.dumps(query.__dict__, sort_keys=True).encode()).hexdigest()
        items = await self._search_cache.get(key, lambda: self._read_models.search_jobs(query))
        return JSONResponse({"items": items, "limit": limit, "offset": offset})

    async def detail(self, request: Request) -> JSONResponse:
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        job = await self._detail_cache.get(job_id, lambda: self._store.latest(job_id))
        if job is None:
            raise ApiError(404, "not_found", "no such job")
        # Live, not cached with the job: as fresh as the Redis sink's last batch (null without Redis).
        job = {**job, "counters": await self._live.counters(job_id)}
        user = request.scope.get("user")
        # Fire-and-forget: a full local queue drops the view rather than slow the read.
        self._producer.send_nowait(
            JOB_VIEWED,
            job_id,
            {
                "event_id": str(uuid.uuid4()),
                "job_id": job_id,
                "viewer_id": user.user_id if isinstance(user, Principal) else None,
                "viewed_at": int(time.time() * 1000),
            },
        )
        return JSONResponse(job)

    async def trending(self, request: Request) -> JSONResponse:
        """Open jobs with the most accepted applications over the last `hours` (1 to 72, default 24)."""
        only_params(request, ("hours", "limit"))
        hours = query_int(request, "hours", minimum=1, maximum=TRENDING_MAX_HOURS, default=24)
        limit = query_int(request, "limit", minimum=1, maximum=50, default=10)

        async def load() -> dict[str, Any] | None:
            ranked = await self._live.trending(hours, limit)
            if ranked is None:
                return None
            jobs = await self._read_models.open_jobs([job_id for job_id, _ in ranked])
            items = [{**jobs[job_id], "accepted": score} for job_id, score in ranked if job_id in jobs]
            return {"hours": hours, "items": items}

        trending = await self._trending_cache.get(f"{hours}:{limit}", load)
        if trending is None:
            raise Unavailable("redis_unavailable", "trending jobs live in Redis, which is unavailable", 1)
        return JSONResponse(trending)

    async def _change(self, job_id: str, employer: Principal, kind: str, fields: dict[str, Any]) -> JSONResponse:
        token = await self._store.lock(job_id, self._lock_ms)
        if token is None:
            raise ApiError(
                409, "job_busy", "another change to this job is in progress; retry", headers={"Retry-After": "1"}
            )
        try:
            current = await self._store.current(job_id)
            if current is None:
                raise ApiError(404, "not_found", "no such job", field="job_id")
            if current["company_id"] != employer.company_id:
                raise ApiError(403, "forbidden", "this job belongs to another company")
            if current["status"] == "closed":
                raise ApiError(409, "job_closed", "the job is closed and cannot change")
            job = {**current, **fields, "updated_at": iso_ms(utc_now())}
            _check_salary(job)
            await self._publish(kind, job, employer)
        finally:
            await self._store.unlock(job_id, token)
        await self._detail_cache.invalidate(job_id)
        return JSONResponse(job, status_code=202)

    async def _publish(self, kind: str, job: Job, employer: Principal) -> None:
        record = {
            "event_id": str(uuid.uuid4()),
            "kind": kind,
            "job_id": job["job_id"],
            "company_id": job["company_id"],
            "employer_id": employer.user_id,
            "title": job["title"],
            "description": job["description"],
            "location": job["location"],
            "remote": job["remote"],
            "salary_min": job["salary_min"],
            "salary_max": job["salary_max"],
            "currency": job["currency"],
            "tags": job["tags"],
            "max_applications": job["max_applications"],
            "deadline": None if job["deadline"] is None else iso_to_epoch_ms(job["deadline"]),
            "occurred_at": int(time.time() * 1000),
        }
        await self._producer.send(JOB_LIFECYCLE, job["job_id"], record)
        await self._store.remember(job)


def _employer(request: Request) -> Principal:
    employer = require_role(request, Role.EMPLOYER)
    if not employer.company_id:
        raise ApiError(403, "forbidden", "your account belongs to no company")
    return employer


def _check_salary(job: Job) -> None:
    low, high = job.get("salary_min"), job.get("salary_max")
    if low is not None and high is not None and low > high:
        raise ApiError(422, "invalid_field", "must not be below salary_min", field="salary_max")


def _job_query(request: Request, limit: int, offset: int) -> JobQuery:
    params = request.query_params
    for name in params:
        if name not in ("q", "location", "remote", "salary_min", "tag", "limit", "offset"):
            raise ApiError(
                422, "unknown_field", "expected q, location, remote, salary_min, tag, limit, offset", field=name
            )
    text = params.get("q")
    if text is not None:
        text = QUERY_TEXT.check("q", text)
    location = params.get("location")
    if location is not None:
        location = QUERY_LOCATION.check("location", location)
    remote = params.get("remote")
    if remote not in (None, "true", "false"):
        raise ApiError(422, "invalid_field", "must be true or false", field="remote")
    salary = query_int(request, "salary_min", minimum=0, maximum=_INT_MAX)
    tags = tuple(sorted({_TAG.check("tag", t) for t in params.getlist("tag")}))
    if len(tags) > 5:
        raise ApiError(422, "invalid_field", "give at most 5 tags", field="tag")
    return JobQuery(
        text=text,
        location=location,
        remote=None if remote is None else remote == "true",
        salary_min=salary,
        tags=tags,
        limit=limit,
        offset=offset,
    )


def _deadline_iso(millis: int | None) -> str | None:
    return None if millis is None else iso_ms(from_epoch_ms(millis))
