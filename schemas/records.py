"""Each event as a typed record, field for field its newest Avro schema (checked by tests/schemas/test_records.py).

Timestamps are aware UTC datetimes (fastavro's `timestamp-millis`); enums are their symbols as strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict


class ApplicationCreated(TypedDict):
    event_id: str
    application_id: str
    job_id: str
    candidate_id: str
    idempotency_key: str | None
    cover_letter: str
    resume_url: str
    submitted_at: datetime
    referral_source: str | None
    contact_email: str | None


class ApplicationDecided(TypedDict):
    event_id: str
    application_id: str
    job_id: str
    candidate_id: str
    company_id: str | None
    outcome: str
    reason: str | None
    submitted_at: datetime
    decided_at: datetime


class ApplicationStageChanged(TypedDict):
    event_id: str
    application_id: str
    job_id: str
    stage: str
    changed_by: str
    changed_at: datetime
    candidate_id: str | None


class JobLifecycle(TypedDict):
    event_id: str
    kind: str
    job_id: str
    company_id: str
    employer_id: str
    title: str
    description: str
    location: str
    remote: bool
    salary_min: int | None
    salary_max: int | None
    currency: str | None
    tags: list[str]
    max_applications: int | None
    deadline: datetime | None
    occurred_at: datetime


class JobViewed(TypedDict):
    event_id: str
    job_id: str
    viewer_id: str | None
    viewed_at: datetime


class UserRegistered(TypedDict):
    event_id: str
    user_id: str
    email: str
    display_name: str
    role: str
    company_id: str | None
    registered_at: datetime


class NotificationRequested(TypedDict):
    notification_id: str
    recipient_id: str
    channel: str
    address: str
    template: str
    params: dict[str, str]
    requested_at: datetime


class NotificationOutcome(TypedDict):
    notification_id: str
    recipient_id: str
    channel: str
    status: str
    attempts: int
    error: str | None
    latency_ms: int
    occurred_at: datetime


class WindowCounts(TypedDict):
    """What both analytics windows count: a closed [window_start, window_end) of one job or one company."""

    window_start: datetime
    window_end: datetime
    applications: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    views: int
    conversion: float | None


class JobWindowStats(WindowCounts):
    job_id: str
    company_id: str | None


class CompanyWindowStats(WindowCounts):
    company_id: str


class SnapshotRow(TypedDict):
    table: str
    # Column values in the manifest's order; a DATETIME as {"micros": ...} since the epoch.
    values: list[object]


class SourceOffset(TypedDict):
    topic: str
    partition: int
    offset: int


class SnapshotTable(TypedDict):
    name: str
    columns: list[str]
    rows: int
    checksum: str


class SnapshotManifest(TypedDict):
    taken_at: datetime
    offsets: list[SourceOffset]
    tables: list[SnapshotTable]


class ReadModelSnapshot(TypedDict):
    """One record of readmodel.snapshot: a row, or the manifest completing a snapshot (sinks/sre/snapshot_store.py)."""

    snapshot_id: str
    row: SnapshotRow | None
    manifest: SnapshotManifest | None


# The Avro event (folder under schemas/avro/) each record is written with.
RECORDS: dict[str, type] = {
    "application_created": ApplicationCreated,
    "application_decided": ApplicationDecided,
    "application_stage_changed": ApplicationStageChanged,
    "job_lifecycle": JobLifecycle,
    "job_viewed": JobViewed,
    "user_registered": UserRegistered,
    "notification_requested": NotificationRequested,
    "notification_outcome": NotificationOutcome,
    "job_window_stats": JobWindowStats,
    "company_window_stats": CompanyWindowStats,
    "read_model_snapshot": ReadModelSnapshot,
}
