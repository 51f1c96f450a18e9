"""What the acceptance topology emits for a decision: the `application.decided` event and its notifications.

Ids are derived from the application id (UUIDv5), so a decision produced again after a crash (before its
transaction committed) carries the same ids and any consumer can still recognise it.

The candidate's notification goes by email when the application carries ``contact_email`` (application.created v3:
the gateway copies it from the candidate's profile), else as push to the candidate's id, as for events written before
v3 or when the gateway could not read the profile. The employer's goes as push to the employer's id: push gateways
address a user by an external user id (FCM topics, OneSignal external ids), so ``channel=push, address=<user id>`` is
deliverable as is; the topology has no other address for employers. Template params carry ids where the templates ask
for names (``candidate_name`` is the candidate id, ``company_name`` the company id): no name passes through
job.lifecycle or application.created. The candidate hears about every decision; the employer only about accepted
applicants ("new applicant").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.avro import Record
from schemas.topics import APPLICATION_DECIDED, NOTIFICATION_REQUESTED
from topologies.acceptance.rules import Decision, Rejection

_IDS = uuid.UUID("0f5e8a52-2c1e-4a53-9d3a-7d6f0c6c1b11")

_REASON_TEXT = {
    Rejection.JOB_UNKNOWN: "the job does not exist",
    Rejection.JOB_CLOSED: "the job is closed",
    Rejection.PAST_DEADLINE: "the application deadline has passed",
    Rejection.JOB_FULL: "the job has all the applications it accepts",
}


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
        "candidate_name": application["candidate_id"],
        "job_title": application["job_id"] if job is None else job.title,
        "company_name": "" if job is None else job.company_id,
    }
    if decision.reason is None:
        template = "application_received"
    else:
        template = "application_rejected"
        params["reason"] = _REASON_TEXT[decision.reason]
    candidate_id = application["candidate_id"]
    # Older events (v1, v2) decode with contact_email None; an empty one is treated as absent too.
    email = application.get("contact_email")
    channel, address = ("email", email) if email else ("push", candidate_id)
    candidate = _notification(application_id, "candidate", candidate_id, template, params, now, channel, address)
    messages = [Outbound(APPLICATION_DECIDED, decided), candidate]
    if decision.reason is None and job is not None:
        employer_params = {**params, "employer_name": job.employer_id}
        employer_id = job.employer_id
        messages.append(
            _notification(
                application_id, "employer", employer_id, "new_applicant", employer_params, now, "push", employer_id
            )
        )
    return messages


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
