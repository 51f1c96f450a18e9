"""The one Quix Streams `Application` factory: every topology and sink process is built here.

What every stage shares lives here once: start from the earliest offset (a stage deployed late still sees every
event), poll with a short timeout, export librdkafka's statistics and per-message counts to `StageMetrics`, and
dead-letter a data error anywhere in the dataframe (`DeadLetterOnError`). What differs (the processing guarantee,
commit cadence, state, client settings) is the caller's, passed explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

from jobstream.dead_letter import DeadLetterOnError, DeadLetterProducer
from jobstream.partitioning import KEY_PARTITIONER
from jobstream.settings import KafkaClientSettings
from jobstream.stage_metrics import STATISTICS_INTERVAL_MS, StageMetrics

# Quix checks whether a checkpoint is due only between polls, and a topology that concatenates topics reads with
# `consume(10_000, timeout)`, which waits the whole timeout unless 10,000 messages arrive first: at Quix's default
# of 1 s, every decision and every sink batch waited up to a second more.
POLL_TIMEOUT_S = 0.05


def build_application(
    kafka: KafkaClientSettings,
    *,
    consumer_group: str,
    state_dir: Path,
    metrics: StageMetrics,
    processing_guarantee: Literal["exactly-once", "at-least-once"],
    commit_interval_s: float,
    session_timeout_ms: int,
    consumer_config: Mapping[str, object] | None = None,
    producer_config: Mapping[str, object] | None = None,
    auto_create_topics: bool = True,
    use_changelog_topics: bool = True,
    commit_every: int = 0,
    max_partition_buffer_size: int = 10_000,
) -> Application:
    """An Application for one stage; the caller adds its dataframes and runs it (through `run_stage`)."""
    return Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(kafka.client_config()),
        consumer_group=consumer_group,
        auto_offset_reset="earliest",
        processing_guarantee=processing_guarantee,
        commit_interval=commit_interval_s,
        commit_every=commit_every,
        consumer_poll_timeout=POLL_TIMEOUT_S,
        state_dir=state_dir,
        auto_create_topics=auto_create_topics,
        use_changelog_topics=use_changelog_topics,
        max_partition_buffer_size=max_partition_buffer_size,
        consumer_extra_config={
            "session.timeout.ms": session_timeout_ms,
            "statistics.interval.ms": STATISTICS_INTERVAL_MS,
            "stats_cb": metrics.statistics,
            **(consumer_config or {}),
        },
        # Quix's own default today, named so that an upgrade cannot move keys off their joined partitions.
        producer_extra_config={"partitioner": KEY_PARTITIONER, **(producer_config or {})},
        on_message_processed=metrics.message_processed,
        on_processing_error=DeadLetterOnError(DeadLetterProducer(kafka), consumer_group, metrics.poison),
    )
