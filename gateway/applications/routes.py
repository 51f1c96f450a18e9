"""Applications: a candidate applies (application.created), an employer moves one along its pipeline
(application.stage_changed), a candidate lists their own and follows one (pending from its 202, with a long-poll),
an employer reads a job's applicants. No MySQL write and no MySQL read sits on the apply path: the event carries the
candidate's id, never a profile lookup's result (``contact_email`` stays null, the field optional since v3). The
notifications stage finds the candidate's address and display name in its own state, from ``user.registered``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.applications.idempotency import IdempotencyStore, Outcome
from gateway.applications.recent import RecentApplications
from gateway.applications.watch import ApplicationWatch, TooManyWaiters
from gateway.clients.producer import EventProducer
from gateway.clients.readmodels import ReadModels
from gateway.http.errors import ApiError, Unavailable
from gateway.http.guards import page_params, require_role
from gateway.http.paging import next_cursor, page_from
from gateway.http.principal import Role
from gateway.http.validation import (
    Choice,
    Field,
    HttpsUrl,
    Text,
    check_object,
    only_params,
    query_choice,
    query_int,
    read_json,
    uuid_param,
)
from jobstream.errors import DependencyUnavailable
from schemas.topics import APPLICATION_CREATED, APPLICATION_STAGE_CHANGED

COVER_LETTER_MAX = 10_000
RESUME_URL_MAX = 2_048
# The longest a status long-poll holds its request: under common proxies' 30 s idle timeouts.
MAX_WAIT_S = 25
STAGES = ("reviewed", "interview", "offer", "hired", "declined")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_\-.:]{8,128}$")

APPLICATION_FIELDS = {
    "cover_letter": Field(Text(1, COVER_LETTER_MAX, multiline=True)),
    "resume_url": Field(HttpsUrl(RESUME_URL_MAX)),
    "referral_source": Field(Text(1, 100, multiline=False), required=False, nullable=True),
}
STAGE_FIELDS = {"stage": Field(Choice(STAGES))}


class ApplicationRoutes:
    def __init__(
        self,
        producer: EventProducer,
        idempotency: IdempotencyStore,
        read_models: ReadModels,
        recent: RecentApplications,
        watch: ApplicationWatch,
        *,
        max_body_bytes: int,
    ) -> None:
        self._producer = producer
        self._idempotency = idempotency
        self._read_models = read_models
        self._recent = recent
        self._watch = watch
        self._max_body_bytes = max_body_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/v1/jobs/{job_id}/applications", self.apply, methods=["POST"]),
            Route("/v1/applications/{application_id}/stage", self.change_stage, methods=["POST"]),
            Route("/v1/me/applications", self.mine, methods=["GET"]),
            Route("/v1/jobs/{job_id}/applications", self.applicants, methods=["GET"]),
            Route("/v1/applications/{application_id}", self.detail, methods=["GET"]),
        ]

    async def applicants(self, request: Request) -> JSONResponse:
        """A job's decided applications, for its company's employers and admins: filtered, sorted, keyset-paged."""
        reader = require_role(request, Role.EMPLOYER, Role.ADMIN)
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        only_params(request, ("stage", "status", "sort", "limit", "cursor"))
        stage = query_choice(request, "stage", ("submitted", *STAGES))
        status = query_choice(request, "status", ("accepted", "rejected"))
        sort = query_choice(request, "sort", ("newest", "oldest")) or "newest"
        page = page_from(request)
        job = await self._read_models.job(job_id)
        if job is None:
            raise ApiError(404, "not_found", "no such job (new ones appear within seconds)")
        if reader.role is not Role.ADMIN and job["company_id"] != reader.company_id:
            raise ApiError(403, "forbidden", "only the employers of this job's company see its applicants")
        items = await self._read_models.job_applicants(
            job_id, stage=stage, status=status, newest_first=sort == "newest", page=page
        )
        cursor = next_cursor(items, page, at="submitted_at", row_id="application_id")
        return JSONResponse({"job_id": job_id, "items": items, "limit": page.limit, "next_cursor": cursor})

    async def detail(self, request: Request) -> JSONResponse:
        """One application with its stage history: for its candidate, its job's employers and admins.

        Its candidate may ask while it is still pending, and with `?wait=` (up to 25 s) is answered as soon as its
        decision is visible, `pending` if it is not by then. With `?wait=` and `?stage=` (the stage the caller
        already shows) a decided application is answered as soon as its stage is another one, or as it is after the
        wait: live stage updates. A wait holds no MySQL connection; it answers from the Redis read model, without
        the stage history.
        """
        reader = require_role(request, Role.CANDIDATE, Role.EMPLOYER, Role.ADMIN)
        application_id = uuid_param(request.path_params["application_id"], "application_id")
        only_params(request, ("wait", "stage"))
        wait_s = query_int(request, "wait", minimum=0, maximum=MAX_WAIT_S, default=0)
        known_stage = query_choice(request, "stage", ("submitted", *STAGES))
        application = await self._read_models.application_detail(application_id)
        pending_of_caller = (
            application is None
            and reader.role is Role.CANDIDATE
            and await self._recent.candidate(application_id) == reader.user_id
        )
        if pending_of_caller:
            return JSONResponse(await self._wait_for_change(application_id, wait_s, None) or _pending(application_id))
        allowed = application is not None and (
            reader.role is Role.ADMIN
            or (reader.role is Role.CANDIDATE and application["candidate_id"] == reader.user_id)
            or (
                reader.role is Role.EMPLOYER
                and reader.company_id is not None
                and application["company_id"] == reader.company_id
            )
        )
        if application is None or not allowed:
            # Not "forbidden": whether someone else's application exists is not the caller's to learn.
            raise ApiError(404, "not_found", "no such application of yours")
        if wait_s and known_stage is not None and application["stage"] == known_stage:
            changed = await self._wait_for_change(application_id, wait_s, known_stage)
            return JSONResponse(changed or {key: value for key, value in application.items() if key != "history"})
        return JSONResponse(application)

    async def _wait_for_change(
        self, application_id: str, wait_s: int, known_stage: str | None
    ) -> dict[str, Any] | None:
        """The Redis view once it is decided (`known_stage` None) or at another stage, within `wait_s`; else None."""

        def changed(view: dict[str, Any] | None) -> bool:
            return view is not None and (known_stage is None or view["stage"] != known_stage)

        if not wait_s:
            view = await self._recent.decided(application_id)
            return view if changed(view) else None
        try:
            # Watching before reading: a change announced between the read and the wait still wakes it.
            async with self._watch.watching(application_id) as announced:
                view = await self._recent.decided(application_id)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        while not changed(view):
                            await announced.wait()
                            announced.clear()
                            view = await self._recent.decided(application_id)
        except TooManyWaiters:
            # Long-polls wait outside admission, bounded by the watch instead: past its bound, 503 as a full queue.
            raise Unavailable("overloaded", "too many status waits in progress; retry shortly", 1) from None
        return view if changed(view) else None

    async def apply(self, request: Request) -> JSONResponse:
        candidate = require_role(request, Role.CANDIDATE)
        job_id = uuid_param(request.path_params["job_id"], "job_id")
        key = request.headers.get("idempotency-key")
        if key is not None and not IDEMPOTENCY_KEY.match(key):
            raise ApiError(
                422, "invalid_field", "must be 8 to 128 characters of A-Z a-z 0-9 _ - . :", field="Idempotency-Key"
            )
        body = check_object(await read_json(request, self._max_body_bytes), APPLICATION_FIELDS)
        application_id = str(uuid.uuid4())
        if key is not None:
            scoped_key = f"{candidate.user_id}:{key}"
            fingerprint = _fingerprint(job_id, body)
            claim = await self._idempotency.claim(scoped_key, fingerprint, application_id)
            if claim.outcome is Outcome.DONE:
                return _accepted(claim.application_id)
            if claim.outcome is Outcome.IN_FLIGHT:
                raise ApiError(
                    409,
                    "idempotency_key_in_flight",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    field="Idempotency-Key",
                    headers={"Retry-After": "1"},
                )
            if claim.outcome is Outcome.MISMATCH:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                    field="Idempotency-Key",
                )
            application_id = claim.application_id
        record = {
            "event_id": str(uuid.uuid4()),
            "application_id": application_id,
            "job_id": job_id,
            "candidate_id": candidate.user_id,
            "idempotency_key": key,
            "cover_letter": body["cover_letter"],
            "resume_url": body["resume_url"],
            "submitted_at": int(time.time() * 1000),
            "referral_source": body.get("referral_source"),
            # Not looked up: the notifications stage resolves the candidate's address from user.registered.
            "contact_email": None,
        }
        try:
            await self._producer.send(APPLICATION_CREATED, job_id, record)
        except DependencyUnavailable:
            if key is not None:
                await self._idempotency.fail(scoped_key, fingerprint, application_id)
            raise
        # The event is durable from here on: the answer is 202 even if the key could not be marked done.
        if key is not None:
            await self._idempotency.complete(scoped_key, fingerprint, application_id)
        await self._recent.record_pending(application_id, candidate.user_id)
        return _accepted(application_id)

    async def change_stage(self, request: Request) -> JSONResponse:
        employer = require_role(request, Role.EMPLOYER)
        application_id = uuid_param(request.path_params["application_id"], "application_id")
        body = check_object(await read_json(request, self._max_body_bytes), STAGE_FIELDS)
        application = await self._read_models.application_with_company(application_id)
        if application is None:
            raise ApiError(404, "not_found", "no such application (new ones appear within seconds)")
        if application["company_id"] is None or application["company_id"] != employer.company_id:
            raise ApiError(403, "forbidden", "only the employer of this application's job may move it")
        if application["status"] != "accepted":
            raise ApiError(409, "not_accepted", f"the application is {application['status']}, not accepted")
        await self._producer.send(
            APPLICATION_STAGE_CHANGED,
            application["job_id"],
            {
                "event_id": str(uuid.uuid4()),
                "application_id": application_id,
                "job_id": application["job_id"],
                "stage": body["stage"],
                "changed_by": employer.user_id,
                "changed_at": int(time.time() * 1000),
                # v2: the acceptance topology notifies this candidate of the change.
                "candidate_id": application["candidate_id"],
            },
        )
        return JSONResponse({"application_id": application_id, "stage": body["stage"]}, status_code=202)

    async def mine(self, request: Request) -> JSONResponse:
        candidate = require_role(request, Role.CANDIDATE)
        limit, offset = page_params(request)
        rows = await self._read_models.candidate_applications(candidate.user_id, limit, offset)
        return JSONResponse({"items": rows, "limit": limit, "offset": offset})


def _fingerprint(job_id: str, body: dict[str, object]) -> str:
    canonical = json.dumps({"job_id": job_id, **body}, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _pending(application_id: str) -> dict[str, object]:
    return {"application_id": application_id, "status": "pending"}


def _accepted(application_id: str) -> JSONResponse:
    return JSONResponse(_pending(application_id), status_code=202)
