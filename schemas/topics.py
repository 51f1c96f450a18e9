"""The topic catalog: every topic Jobstream owns, declared once.

Topics that are co-partitioned (joined by job_id in one topology) must keep equal partition counts.
Quix Streams creates its own changelog and repartition topics; they are not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000

# application.created and job.lifecycle are joined per job: keep these equal.
JOB_PARTITIONS = 6


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    key: str
    description: str
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS
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
    return (
        TopicSpec(
            name="application.created",
            partitions=JOB_PARTITIONS,
            replication_factor=replication_factor,
            key="job_id",
            description="A candidate applied to a job; produced by the gateway after validation.",
            # Accepted applications must survive any replay an SRE may need: keep them for a year.
            retention_ms=365 * DAY_MS,
        ),
        TopicSpec(
            name="job.lifecycle",
            partitions=JOB_PARTITIONS,
            replication_factor=replication_factor,
            key="job_id",
            description="A job was created, updated or closed by its employer.",
            # Compaction keeps each job's latest state forever, so state can always be rebuilt.
            cleanup_policy="compact",
            retention_ms=-1,
        ),
        TopicSpec(
            name="notification.requested",
            partitions=JOB_PARTITIONS,
            replication_factor=replication_factor,
            key="recipient_id",
            description="One email, SMS or push to send; notification_id makes delivery idempotent.",
        ),
    )
