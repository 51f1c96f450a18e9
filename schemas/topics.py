"""The topic catalog: every topic Jobstream owns, declared once.

Topics that are co-partitioned (joined by key in one topology: by job_id in acceptance, by user id in notifications)
must keep equal partition counts, and their producers one partitioner (`jobstream.partitioning`).
Quix Streams creates its own changelog and repartition topics; they are not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000

# Every topic's name, for code to import: a name is never written as a string literal anywhere else.
APPLICATION_CREATED = "application.created"
JOB_LIFECYCLE = "job.lifecycle"
APPLICATION_DECIDED = "application.decided"
APPLICATION_STAGE_CHANGED = "application.stage_changed"
JOB_VIEWED = "job.viewed"
USER_REGISTERED = "user.registered"
NOTIFICATION_REQUESTED = "notification.requested"
NOTIFICATION_OUTCOME = "notification.outcome"
NOTIFICATION_RETRY = "notification.retry"
NOTIFICATION_DEAD_LETTER = "notification.dead_letter"
DEAD_LETTER = "dead_letter"
ANALYTICS_JOB_MINUTE = "analytics.job_minute"
ANALYTICS_COMPANY_HOUR = "analytics.company_hour"
READ_MODEL_SNAPSHOT = "readmodel.snapshot"

# application.created and job.lifecycle are joined per job: keep these equal.
JOB_PARTITIONS = 6

# What a MySQL read model is rebuilt from: the latest snapshot in READ_MODEL_SNAPSHOT (`python -m sinks.sre.snapshot`,
# daily) and the events after it. The events must outlive a snapshot job that keeps failing until someone notices.
REPLAYABLE_MS = 30 * DAY_MS
_REPLAYABLE_REASON = (
    "a read model is rebuilt from the latest daily snapshot (readmodel.snapshot) and the events after it; "
    "30 days leaves four weeks to repair a failing snapshot job before replay refuses"
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    key: str
    description: str
    # The Avro event (folder under schemas/avro/) every value is written with; None for raw bytes.
    event: str | None
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS
    # Why the topic keeps what it keeps: every catalog topic says (tests/schemas/test_topic_catalog.py).
    retention_reason: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self, min_insync_replicas: int) -> dict[str, str]:
        """Topic-level configs as Kafka expects them in CreateTopics and AlterConfigs."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min_insync_replicas),
            **self.extra_config,
        }


def topic_catalog(replication_factor: int) -> tuple[TopicSpec, ...]:
    """Every topic Jobstream owns, with the cluster's replication factor."""
    rf = replication_factor
    return (
        TopicSpec(
            name=APPLICATION_CREATED,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="job_id",
            description="A candidate applied to a job; produced by the gateway after validation.",
            event="application_created",
            retention_ms=REPLAYABLE_MS,
            retention_reason=(
                "the acceptance topology's input, decided within seconds; a month lets an SRE re-run acceptance, "
                "and the decisions (with the snapshot) carry every application after that"
            ),
        ),
        TopicSpec(
            name=JOB_LIFECYCLE,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="job_id",
            description="A job was created, updated or closed by its employer; each event is the whole job.",
            event="job_lifecycle",
            cleanup_policy="compact",
            retention_ms=-1,
            retention_reason="each job's latest state, forever: the acceptance table join and the jobs model",
        ),
        TopicSpec(
            name=APPLICATION_DECIDED,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="job_id",
            description="The acceptance topology accepted or rejected an application, exactly once.",
            event="application_decided",
            retention_ms=REPLAYABLE_MS,
            retention_reason=_REPLAYABLE_REASON,
        ),
        TopicSpec(
            name=APPLICATION_STAGE_CHANGED,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="job_id",
            description="An employer moved an application along its pipeline.",
            event="application_stage_changed",
            retention_ms=REPLAYABLE_MS,
            retention_reason=_REPLAYABLE_REASON,
        ),
        TopicSpec(
            name=JOB_VIEWED,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="job_id",
            description="A job detail page was read; feeds views-to-applications conversion.",
            event="job_viewed",
            retention_reason="read only by the analytics windows, which close within minutes and are kept in "
            "analytics.* and the snapshots",
        ),
        TopicSpec(
            name=USER_REGISTERED,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="user_id",
            description=(
                "A user's account as it now is: written on registration and again when the display name changes; "
                "relayed from the gateway's transactional outbox."
            ),
            event="user_registered",
            cleanup_policy="compact",
            retention_ms=-1,
            retention_reason="each account's latest state, forever: the notifications stage's table of names",
        ),
        TopicSpec(
            name=NOTIFICATION_REQUESTED,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="recipient_id",
            description="One email, SMS or push to send; notification_id makes delivery idempotent.",
            event="notification_requested",
            retention_reason="a work queue, delivered or retried within minutes; a week covers a provider outage",
        ),
        TopicSpec(
            name=NOTIFICATION_OUTCOME,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="recipient_id",
            description="A notification was sent, or failed for good after its retries.",
            event="notification_outcome",
            retention_ms=REPLAYABLE_MS,
            retention_reason=_REPLAYABLE_REASON,
        ),
        TopicSpec(
            name=NOTIFICATION_RETRY,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="recipient_id",
            description="Notifications to try again after their not-before time; attempts and last error in headers.",
            event="notification_requested",
            retention_reason="a work queue of retries due within hours; a week covers a provider outage",
        ),
        TopicSpec(
            name=NOTIFICATION_DEAD_LETTER,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="recipient_id",
            description="Notifications given up on after N attempts, as requested, with the error in headers.",
            event="notification_requested",
            retention_ms=30 * DAY_MS,
            retention_reason="kept for an operator to read the error and re-drive the notification",
        ),
        TopicSpec(
            name=DEAD_LETTER,
            partitions=3,
            replication_factor=rf,
            key="the original message's key",
            description="Poison messages (undecodable, unknown schema) copied byte for byte, the reason in headers.",
            event=None,
            retention_ms=30 * DAY_MS,
            retention_reason="kept for an operator to read the reason, fix the producer or the stage, and replay",
        ),
        TopicSpec(
            name=ANALYTICS_JOB_MINUTE,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="job_id",
            description="Per job, per closed 1-minute tumbling window: decisions by outcome and reason, views.",
            event="job_window_stats",
            retention_ms=REPLAYABLE_MS,
            retention_reason=_REPLAYABLE_REASON,
        ),
        TopicSpec(
            name=ANALYTICS_COMPANY_HOUR,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="company_id",
            description="Per company, per closed 1-hour window hopping every 5 minutes: the views-to-decisions funnel.",
            event="company_window_stats",
            retention_ms=REPLAYABLE_MS,
            retention_reason=_REPLAYABLE_REASON,
        ),
        TopicSpec(
            name=READ_MODEL_SNAPSHOT,
            partitions=JOB_PARTITIONS,
            replication_factor=rf,
            key="row/<snapshot id>/<table>/<primary key>, or manifest",
            description=(
                "Every MySQL read model's rows at known offsets of its topics, then the manifest naming them; "
                "written by `python -m sinks.sre.snapshot`, read first by every replay."
            ),
            event="read_model_snapshot",
            cleanup_policy="compact",
            retention_ms=-1,
            retention_reason=(
                "the base every replay starts from, forever; compaction keeps the latest manifest and the rows of "
                "its snapshot (each snapshot tombstones the rows of the one before)"
            ),
        ),
    )
