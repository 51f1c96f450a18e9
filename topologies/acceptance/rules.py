"""The acceptance rules over one job's state: the job as its lifecycle events left it, and who applied.

State lives under the job's key (Quix state is scoped to the message key, here job_id), one small entry per fact
so that a job with thousands of applicants never rewrites a growing list:

- ``job``: status (open/closed), company, employer, title, max_applications, deadline (epoch ms);
- ``accepted``: how many applications were accepted, for max_applications;
- ``event:<id>``, ``application:<id>``, ``idempotency:<candidate id>:<key>``, ``candidate:<id>``: seen markers for
  duplicates. An Idempotency-Key is the client's choice, so it is unique only per candidate (as in the gateway):
  two candidates who pick the same key make two applications.

An application whose job has no created event yet is rejected at once with ``job_unknown``, and its candidate is
not recorded, so the candidate may apply again once the job exists. The topology reads job.lifecycle and
application.created aligned by timestamp, so a job created before an application is always known when it is
decided, even if its topic lags. Holding early applications instead would need a timer per job (Quix 3 has none:
state only changes when a message for that key arrives), and an application for a job that never comes would
then never be decided at all.

A closed job stays closed: an ``updated`` event after ``closed`` changes its fields, not its status.
Deadlines compare with the application's ``submitted_at`` (event time), so a replay decides the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol

from jobstream.clock import epoch_ms
from schemas.avro import Record


class StateStore(Protocol):
    """What the rules need from Quix's `State` (a dict-backed fake in unit tests)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def exists(self, key: str) -> bool: ...


class Rejection(StrEnum):
    JOB_UNKNOWN = "job_unknown"
    JOB_CLOSED = "job_closed"
    PAST_DEADLINE = "past_deadline"
    JOB_FULL = "job_full"


class DuplicateKind(StrEnum):
    """Which check recognised a duplicate, in the order they are tried."""

    EVENT_ID = "event_id"
    APPLICATION_ID = "application_id"
    IDEMPOTENCY_KEY = "idempotency_key"
    CANDIDATE = "candidate"


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    company_id: str
    employer_id: str
    title: str
    max_applications: int | None
    deadline_ms: int | None


@dataclass(frozen=True)
class Decision:
    application: Record
    job: Job | None
    reason: Rejection | None

    @property
    def outcome(self) -> str:
        return "accepted" if self.reason is None else "rejected"


@dataclass(frozen=True)
class Duplicate:
    application: Record
    kind: DuplicateKind


class JobBook:
    """One job's acceptance state; every method reads and writes through `state`."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def job(self) -> Job | None:
        stored = self._state.get("job")
        return None if stored is None else Job(**stored)

    def apply_lifecycle(self, event: Record) -> Job:
        previous = self.job()
        closed = event["kind"] == "closed" or (previous is not None and previous.status == "closed")
        deadline = event["deadline"]
        job = Job(
            job_id=event["job_id"],
            status="closed" if closed else "open",
            company_id=event["company_id"],
            employer_id=event["employer_id"],
            title=event["title"],
            max_applications=event["max_applications"],
            deadline_ms=None if deadline is None else epoch_ms(deadline),
        )
        self._state.set("job", asdict(job))
        return job

    def decide(self, application: Record) -> Decision | Duplicate:
        """Exactly one Decision per application; a Duplicate for anything seen before."""
        duplicate = self._remember(application)
        if duplicate is not None:
            return Duplicate(application, duplicate)
        job = self.job()
        if job is None:
            return Decision(application, None, Rejection.JOB_UNKNOWN)
        self._state.set(f"candidate:{application['candidate_id']}", application["application_id"])
        reason = self._rejection(job, application)
        if reason is None:
            self._state.set("accepted", self._state.get("accepted", 0) + 1)
        return Decision(application, job, reason)

    def _remember(self, application: Record) -> DuplicateKind | None:
        markers = [
            (DuplicateKind.EVENT_ID, f"event:{application['event_id']}"),
            (DuplicateKind.APPLICATION_ID, f"application:{application['application_id']}"),
        ]
        if application["idempotency_key"]:
            scoped_key = f"{application['candidate_id']}:{application['idempotency_key']}"
            markers.append((DuplicateKind.IDEMPOTENCY_KEY, f"idempotency:{scoped_key}"))
        markers.append((DuplicateKind.CANDIDATE, f"candidate:{application['candidate_id']}"))
        for kind, marker in markers:
            if self._state.exists(marker):
                return kind
        # The candidate marker is set by `decide` once the job is known (see the module docstring).
        for kind, marker in markers:
            if kind is not DuplicateKind.CANDIDATE:
                self._state.set(marker, application["application_id"])
        return None

    def _rejection(self, job: Job, application: Record) -> Rejection | None:
        if job.status == "closed":
            return Rejection.JOB_CLOSED
        if job.deadline_ms is not None and epoch_ms(application["submitted_at"]) > job.deadline_ms:
            return Rejection.PAST_DEADLINE
        if job.max_applications is not None and self._state.get("accepted", 0) >= job.max_applications:
            return Rejection.JOB_FULL
        return None
