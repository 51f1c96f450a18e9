"""What the acceptance topology emits: a decision's `application.decided` event and its notifications, and the
candidate's notification of a stage change.

Ids are derived (UUIDv5) from the application id and the notification's purpose (for a stage change, the stage), so
a message produced again after a crash (before its transaction committed) carries the same ids and any consumer
can still recognise it; the notifications' delivered ledger then sends each once, a stage redelivered included.

Addresses and names are not the topology's to know: the candidate's notifications go with ``channel=email`` and an
empty ``address``, which means "the recipient's own email": the notifications stage resolves it, and the display
name it greets with, from ``user.registered`` in its state (`topologies.notifications.recipients`). An application
that carries ``contact_email`` (application.created v3, from gateways that still looked it up) gives that address
instead. The employer's goes as push to the employer's id: push gateways address a user by an external user id (FCM
topics, OneSignal external ids), so ``channel=push, address=<user id>`` is deliverable as is. Params carry the job's
title, never an id where a name belongs; no event carries a company's name, so none is sent. The candidate hears
about every decision and every stage change; the employer only about accepted applicants ("new applicant").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.avro import Record
from schemas.topics import APPLICATION_DECIDED, NOTIFICATION_REQUESTED
from topologies.acceptance.rules import Decision, Job, Rejection

_IDS = uuid.UUID("0f5e8a52-2c1e-4a53-9d3a-7d6f0c6c1b11")

_REASON_TEXT = {
    Rejection.JOB_UNKNOWN: "the job does not exist",
    Rejection.JOB_CLOSED: "the job is closed",
    Rejection.PAST_DEADLINE: "the application deadline has passed",
    Rejection.JOB_FULL: "the job has all the applications it accepts",
}
# The title of a job the topology never heard of (a job_unknown rejection): not its id.
_UNKNOWN_JOB_TITLE = "the job you applied to"
# The address of a recipient's own email, resolved by the notifications stage from user.registered.
OWN_EMAIL = ""


# Each output topic's key field, as the topic catalog declares it.
KEY_FIELDS = {APPLICATION_DECIDED: "job_id", NOTIFICATION_REQUESTED: "recipient_id"}


@dataclass(frozen=True)
class Outbound:
    """One record for one output topic."""

    topic: str
    record: Record


def _derived_id(application_id: str, purpose: str) -> str:
    return str(uuid.uuid5(_IDS, f"{application_id}/{purpose}"))


def decision_messages(decision: Decision, decided_at: datetime | None = None) -> list[Outbound]:
    """The decided event, the candidate's notification and, when accepted, the employer's."""
    application = decision.application
    job = decision.job
    now = decided_at or datetime.now(UTC)
    application_id = application["application_id"]
    decided = {
        "event_id": _derived_id(application_id, "decided"),
        "application_id": application_id,
        "job_id": application["job_id"],
        "candidate_id": application["candidate_id"],
        "company_id": None if job is None else job.company_id,
        "outcome": decision.outcome,
        "reason": None if decision.reason is None else decision.reason.value,
        "submitted_at": application["submitted_at"],
        "decided_at": now,
    }
    params = {
        "application_id": application_id,
        "job_id": application["job_id"],
        "candidate_id": application["candidate_id"],
        "job_title": _UNKNOWN_JOB_TITLE if job is None else job.title,
    }
    if decision.reason is None:
        template = "application_received"
    else:
        template = "application_rejected"
        params["reason"] = _REASON_TEXT[decision.reason]
    candidate_id = application["candidate_id"]
    # Events before v3 decode with contact_email None; None and "" both mean: the candidate's own email.
    address = application.get("contact_email") or OWN_EMAIL
    candidate = _notification(application_id, "candidate", candidate_id, template, params, now, "email", address)
    messages = [Outbound(APPLICATION_DECIDED, decided), candidate]
    if decision.reason is None and job is not None:
        employer_id = job.employer_id
        messages.append(
            _notification(application_id, "employer", employer_id, "new_applicant", params, now, "push", employer_id)
        )
    return messages


def stage_messages(change: Record, job: Job | None, changed_at: datetime | None = None) -> list[Outbound]:
    """The candidate's notification of a stage change: none for a v1 event (no candidate_id) or an unknown job.

    The gateway moves accepted applications only, so their job is in state; without it there is no title to name.
    """
    candidate_id = change.get("candidate_id")
    if not candidate_id or job is None:
        return []
    application_id = change["application_id"]
    params = {
        "application_id": application_id,
        "job_id": change["job_id"],
        "candidate_id": candidate_id,
        "job_title": job.title,
        "stage": change["stage"],
    }
    now = changed_at or datetime.now(UTC)
    purpose = f"stage/{change['stage']}"
    return [_notification(application_id, purpose, candidate_id, "stage_changed", params, now, "email", OWN_EMAIL)]


def _notification(
    application_id: str,
    purpose: str,
    user_id: str,
    template: str,
    params: dict[str, str],
    now: datetime,
    channel: str,
    address: str,
) -> Outbound:
    """One notification.requested; its id depends on the application and the purpose, never on the channel."""
    record = {
        "notification_id": _derived_id(application_id, purpose),
        "recipient_id": user_id,
        "channel": channel,
        "address": address,
        "template": template,
        "params": params,
        "requested_at": now,
    }
    return Outbound(NOTIFICATION_REQUESTED, record)
