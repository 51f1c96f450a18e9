"""`python -m sinks.sre.lag [--group G ...]`: consumer lag per group and partition (committed vs high watermark).

Without --group, Jobstream's groups from the settings: the sinks and the topologies.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TextIO

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from jobstream.settings import KafkaClientSettings, Settings

_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    # None: the group never committed on this partition.
    committed: int | None
    high: int

    @property
    def lag(self) -> int:
        return self.high - (self.committed or 0)


def group_lag(kafka: KafkaClientSettings, group: str) -> list[PartitionLag]:
    """Every partition `group` committed an offset on, with its lag now."""
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    request = [ConsumerGroupTopicPartitions(group)]
    committed = admin.list_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)[group].result()
    consumer = Consumer({**kafka.client_config(), "group.id": group, "log_level": 0})
    try:
        rows = []
        for tp in sorted(committed.topic_partitions, key=lambda tp: (tp.topic, tp.partition)):
            _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=_TIMEOUT_S)
            rows.append(PartitionLag(group, tp.topic, tp.partition, tp.offset if tp.offset >= 0 else None, high))
        return rows
    finally:
        consumer.close()


def jobstream_groups(settings: Settings) -> list[str]:
    return [
        settings.sinks.mysql_group,
        settings.sinks.redis_group,
        settings.acceptance.consumer_group,
        settings.analytics.topology.consumer_group,
        settings.notifications.topology.consumer_group,
    ]


def print_lag(rows: list[PartitionLag], out: TextIO) -> None:
    out.write(f"{'group':<32} {'topic':<28} {'part':>4} {'committed':>10} {'high':>10} {'lag':>8}\n")
    for row in rows:
        committed = "-" if row.committed is None else str(row.committed)
        out.write(f"{row.group:<32} {row.topic:<28} {row.partition:>4} {committed:>10} {row.high:>10} {row.lag:>8}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sinks.sre.lag", description=__doc__)
    parser.add_argument("--group", action="append", help="a consumer group (repeatable); Jobstream's by default")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    groups = args.group or jobstream_groups(settings)
    rows = [row for group in groups for row in group_lag(settings.kafka, group)]
    print_lag(rows, sys.stdout)
    total = sum(row.lag for row in rows)
    sys.stdout.write(f"total lag: {total}\n")


if __name__ == "__main__":
    main()
