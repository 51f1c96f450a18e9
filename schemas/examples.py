"""Valid example events, one factory per event, for tests and benchmarks: every field filled, any overridden.

Ids are fresh UUIDs and times are now unless given, so two calls never collide in a dedup check by accident.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from jobstream.clock import epoch_ms, from_epoch_ms, utc_now
from schemas.records import (
    ApplicationCreated,
    ApplicationDecided,
    ApplicationStageChanged,
    CompanyWindowStats,
    JobLifecycle,
    JobWindowStats,
    NotificationOutcome,
    NotificationRequested,
    UserRegistered,
    WindowCounts,
)

R = TypeVar("R")


def new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    """Now, in the milliseconds an event carries."""
    return from_epoch_ms(epoch_ms(utc_now()))


def _with(event: R, fields: dict[str, Any]) -> R:
    """`event` with `fields` replacing its own: the caller's overrides are checked by the schema, not here."""
    return cast(R, {**cast(dict[str, Any], event), **fields})


def job_lifecycle(job_id: str | None = None, kind: str = "created", **fields: Any) -> JobLifecycle:
    """An open job (no cap, no deadline) unless `fields` say otherwise."""
    event: JobLifecycle = {
        "event_id": new_id(),
        "kind": kind,
        "job_id": job_id or new_id(),
        "company_id": new_id(),
        "employer_id": new_id(),
        "title": "Stream processing engineer",
        "description": "Kafka and Quix Streams.",
        "location": "Remote",
        "remote": True,
        "salary_min": None,
        "salary_max": None,
        "currency": None,
        "tags": [],
        "max_applications": None,
        "deadline": None,
        "occurred_at": _now(),
    }
    return _with(event, fields)


def application_created(job_id: str, **fields: Any) -> ApplicationCreated:
    event: ApplicationCreated = {
        "event_id": new_id(),
        "application_id": new_id(),
        "job_id": job_id,
        "candidate_id": new_id(),
        "idempotency_key": None,
        "cover_letter": "Hello",
        "resume_url": "https://example.test/cv.pdf",
        "submitted_at": _now(),
        "referral_source": None,
        "contact_email": None,
    }
    return _with(event, fields)


def application_decided(job_id: str, outcome: str = "accepted", **fields: Any) -> ApplicationDecided:
    """A decision; a rejection gives `job_closed` as its reason unless another is given."""
    now = _now()
    event: ApplicationDecided = {
        "event_id": new_id(),
        "application_id": new_id(),
        "job_id": job_id,
        "candidate_id": new_id(),
        "company_id": None,
        "outcome": outcome,
        "reason": "job_closed" if outcome == "rejected" else None,
        "submitted_at": now,
        "decided_at": now,
    }
    return _with(event, fields)


def application_stage_changed(application_id: str, job_id: str, stage: str, **fields: Any) -> ApplicationStageChanged:
    event: ApplicationStageChanged = {
        "event_id": new_id(),
        "application_id": application_id,
        "job_id": job_id,
        "stage": stage,
        "changed_by": new_id(),
        "changed_at": _now(),
        "candidate_id": new_id(),
    }
    return _with(event, fields)


def user_registered(user_id: str | None = None, **fields: Any) -> UserRegistered:
    """A candidate's account, as the outbox relay publishes it on registration and on a profile change."""
    user_id = user_id or new_id()
    event: UserRegistered = {
        "event_id": new_id(),
        "user_id": user_id,
        "email": f"{user_id}@example.test",
        "display_name": "Ada Lovelace",
        "role": "candidate",
        "company_id": None,
        "registered_at": _now(),
    }
    return _with(event, fields)


def notification_requested(recipient_id: str | None = None, **fields: Any) -> NotificationRequested:
    event: NotificationRequested = {
        "notification_id": new_id(),
        "recipient_id": recipient_id or new_id(),
        "channel": "push",
        "address": recipient_id or "device-token",
        "template": "welcome",
        "params": {"name": "Ada"},
        "requested_at": _now(),
    }
    return _with(event, fields)


def notification_outcome(
    notification_id: str | None = None, status: str = "sent", **fields: Any
) -> NotificationOutcome:
    """A delivered notification, or one given up on after five attempts (any other `status`)."""
    event: NotificationOutcome = {
        "notification_id": notification_id or new_id(),
        "recipient_id": new_id(),
        "channel": "email",
        "status": status,
        "attempts": 1 if status == "sent" else 5,
        "error": None if status == "sent" else "smtp 451",
        "latency_ms": 120,
        "occurred_at": _now(),
    }
    return _with(event, fields)


def window_counts(start: datetime, applications: int = 3) -> WindowCounts:
    """One closed 1-minute window: one rejection (`job_full`), the rest accepted, ten views."""
    return {
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "applications": applications,
        "accepted": applications - 1,
        "rejected": 1,
        "rejected_by_reason": {"job_full": 1},
        "views": 10,
        "conversion": applications / 10,
    }


def job_window_stats(job_id: str, start: datetime, applications: int = 3, **fields: Any) -> JobWindowStats:
    event: JobWindowStats = {"job_id": job_id, "company_id": new_id(), **window_counts(start, applications)}
    return _with(event, fields)


def company_window_stats(company_id: str, start: datetime, applications: int = 3, **fields: Any) -> CompanyWindowStats:
    event: CompanyWindowStats = {"company_id": company_id, **window_counts(start, applications)}
    return _with(event, fields)
