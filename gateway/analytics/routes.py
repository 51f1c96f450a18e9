"""Analytics reads: the windowed counts, funnels and rejection reasons the sinks materialize, for analysts.

Analysts and admins read everything; an employer reads only its own company's figures; candidates get 403.
Every answer goes through a short-lived Redis cache (the figures only change when a window closes), keyed by
the normalized query, and authorization is checked before the cache is consulted for the figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.clients.cache import SwrCache
from gateway.clients.readmodels import ReadModels
from gateway.http.errors import ApiError, InvalidField
from gateway.http.guards import require_role
from gateway.http.principal import Principal, Role
from gateway.http.validation import Timestamp, only_params, query_int, uuid_param
from jobstream.clock import db_utc, epoch_ms, iso_ms

MINUTE = timedelta(minutes=1)
# Per endpoint: the span read when `since` is not given, and the widest [since, until) a request may ask for.
JOB_WINDOW_SPAN, JOB_WINDOW_MAX_RANGE = timedelta(hours=1), timedelta(days=7)
COMPANY_WINDOW_SPAN, COMPANY_WINDOW_MAX_RANGE = timedelta(days=1), timedelta(days=31)
REJECTION_SPAN, REJECTION_MAX_RANGE = timedelta(days=1), timedelta(days=31)
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
_STAGES = ("reviewed", "interview", "offer", "hired", "declined")
_TIMESTAMP = Timestamp()


@dataclass(frozen=True)
class TimeRange:
    since: datetime
    until: datetime

    @property
    def key(self) -> str:
        return f"{epoch_ms(self.since)}-{epoch_ms(self.until)}"


class AnalyticsRoutes:
    def __init__(
        self, read_models: ReadModels, cache: SwrCache, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._read_models = read_models
        self._cache = cache
        self._clock = clock or (lambda: datetime.now(UTC))

    def routes(self) -> list[Route]:
        return [
            Route("/v1/analytics/jobs/{job_id}/windows", self.job_windows, methods=["GET"]),
            Route("/v1/analytics/companies/{company_id}/windows", self.company_windows, methods=["GET"]),
            Route("/v1/analytics/jobs/{job_id}/funnel", self.job_funnel, methods=["GET"]),
            Route("/v1/analytics/rejections", self.rejections, methods=["GET"]),
        ]

    async def job_windows(self, request: Request) -> JSONResponse:
        """Per-job 1-minute windows in [since, until) (default: the last hour), oldest first, `limit` per page."""
        reader = _reader(request)
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        only_params(request, ("since", "until", "limit"))
        span = self._time_range(request, JOB_WINDOW_SPAN, JOB_WINDOW_MAX_RANGE)
        limit = _limit(request)
        company_id = await self._job_company(job_id)
        _check_company(reader, company_id)
        items = await self._cached(
            f"job_windows:{job_id}:{span.key}:{limit}",
            lambda: self._read_models.job_windows(job_id, db_utc(span.since), db_utc(span.until), limit),
        )
        return JSONResponse({"job_id": job_id, **_page(items, span, limit)})

    async def company_windows(self, request: Request) -> JSONResponse:
        """Per-company 1-hour windows hopping every 5 minutes in [since, until) (default: the last day)."""
        reader = _reader(request)
        company_id = uuid_param(request.path_params["company_id"], "company_id")
        only_params(request, ("since", "until", "limit"))
        span = self._time_range(request, COMPANY_WINDOW_SPAN, COMPANY_WINDOW_MAX_RANGE)
        limit = _limit(request)
        _check_company(reader, company_id)
        items = await self._cached(
            f"company_windows:{company_id}:{span.key}:{limit}",
            lambda: self._read_models.company_windows(company_id, db_utc(span.since), db_utc(span.until), limit),
        )
        return JSONResponse({"company_id": company_id, **_page(items, span, limit)})

    async def job_funnel(self, request: Request) -> JSONResponse:
        """Views -> decided applications -> accepted -> each pipeline stage, with the conversion between them."""
        reader = _reader(request)
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        only_params(request, ())
        company_id = await self._job_company(job_id)
        _check_company(reader, company_id)
        counts = await self._cached(f"job_funnel:{job_id}", lambda: self._read_models.job_funnel(job_id))
        return JSONResponse(
            {
                "job_id": job_id,
                "company_id": company_id,
                "views": counts["views"],
                "applications": counts["applications"],
                "accepted": counts["accepted"],
                "rejected": counts["rejected"],
                "stages": {stage: counts[stage] for stage in _STAGES},
                "conversion": {
                    "view_to_application": _ratio(counts["applications"], counts["views"]),
                    "application_to_accepted": _ratio(counts["accepted"], counts["applications"]),
                },
            }
        )

    async def rejections(self, request: Request) -> JSONResponse:
        """Rejections by reason over the job windows in [since, until) (default: the last day), busiest first.

        Analysts see every job, or one company's with `company_id`; an employer always sees only its own company.
        """
        reader = _reader(request)
        only_params(request, ("since", "until", "company_id"))
        span = self._time_range(request, REJECTION_SPAN, REJECTION_MAX_RANGE)
        raw_company = request.query_params.get("company_id")
        company_id = None if raw_company is None else uuid_param(raw_company, "company_id")
        if reader.role == Role.EMPLOYER:
            if company_id is not None:
                _check_company(reader, company_id)
            company_id = reader.company_id
        by_reason = await self._cached(
            f"rejections:{company_id or 'all'}:{span.key}",
            lambda: self._read_models.rejections(db_utc(span.since), db_utc(span.until), company_id),
        )
        return JSONResponse(
            {
                "company_id": company_id,
                "since": iso_ms(span.since),
                "until": iso_ms(span.until),
                "rejected": sum(by_reason.values()),
                "by_reason": [{"reason": reason, "rejected": count} for reason, count in by_reason.items()],
            }
        )

    async def _job_company(self, job_id: str) -> str | None:
        """The company owning the job (None when no read model knows it); 404 when no read model has the job."""
        owner = await self._cached(f"job_owner:{job_id}", lambda: self._read_models.job_owner(job_id))
        if owner is None:
            raise ApiError(404, "not_found", "no such job in the read models", field="job_id")
        company: str | None = owner["company_id"]
        return company

    async def _cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        return await self._cache.get(key, load)

    def _time_range(self, request: Request, span: timedelta, max_range: timedelta) -> TimeRange:
        params = request.query_params
        until = _timestamp(params, "until")
        since = _timestamp(params, "since")
        if until is None:
            # Whole minutes, so requests without `until` share cache entries for up to a minute.
            now = self._clock()
            until = now.replace(second=0, microsecond=0) + MINUTE
        if since is None:
            since = until - span
        if since > until:
            raise InvalidField("since", "must not be after until")
        if until - since > max_range:
            raise InvalidField("since", f"must be at most {_describe(max_range)} before until")
        return TimeRange(since, until)


def _reader(request: Request) -> Principal:
    reader = require_role(request, Role.ANALYST, Role.ADMIN, Role.EMPLOYER)
    if reader.role == Role.EMPLOYER and not reader.company_id:
        raise ApiError(403, "forbidden", "your account belongs to no company")
    return reader


def _check_company(reader: Principal, company_id: str | None) -> None:
    if reader.role == Role.EMPLOYER and company_id != reader.company_id:
        raise ApiError(403, "forbidden", "employers may read only their own company's analytics")


def _timestamp(params: Any, name: str) -> datetime | None:
    values = params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidField(name, "give it once")
    raw: str = values[0]
    if " " in raw:
        # A '+' in a query string decodes to a space: the usual way a UTC offset gets lost.
        raise InvalidField(name, "must be an ISO 8601 date-time; write the offset as Z or encode '+' as %2B")
    try:
        millis = _TIMESTAMP.check(name, raw)
    except OverflowError:
        # Timestamp converts to UTC before its year check: year 1 or 9999 with an offset overflows there.
        raise InvalidField(name, "must be a date between 1971 and 9998") from None
    return datetime.fromtimestamp(millis / 1000, UTC)


def _limit(request: Request) -> int:
    return query_int(request, "limit", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT)


def _page(items: list[dict[str, Any]], span: TimeRange, limit: int) -> dict[str, Any]:
    """The page and, when it is full, `next_since`: pass it as `since` (same `until`) for the next page."""
    next_since = None
    if len(items) == limit:
        last = datetime.fromisoformat(items[-1]["window_start"])
        next_since = iso_ms(last + timedelta(milliseconds=1))
    return {
        "since": iso_ms(span.since),
        "until": iso_ms(span.until),
        "limit": limit,
        "items": items,
        "next_since": next_since,
    }


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _describe(span: timedelta) -> str:
    return f"{span.days} days" if span.days else f"{int(span.total_seconds() // 3600)} hours"
