"""Run a topology as its own process against the real broker, feed it Avro events and read what it writes.

Each launch gets a unique consumer group whose offsets are committed at the current end of its input topics
before it starts, so it sees only what the test produces (plus whatever other tests produce meanwhile) and
never replays the shared topics' history. Its changelog and repartition topics are deleted afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from jobstream.consumer_offsets import commit_at_end, end_offsets
from jobstream.settings import PROJECT_ROOT, KafkaClientSettings
from schemas import examples
from schemas.avro import EventSchema, Record, load_event_schemas
from stack.processes import free_port
from tests.kafka_helpers import idempotent_producer

EVENTS = load_event_schemas()
_INTERNAL = ("changelog__", "repartition__")


@dataclass
class TopologyProcess:
    """`python -m topologies.<name>` with its own group, state directory and metrics port."""

    name: str
    group: str
    env: dict[str, str]
    log_path: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, **overrides: str) -> TopologyProcess:
        self.env.update(overrides)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-W", "ignore", "-m", f"topologies.{self.name}"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no leaving the group."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` matching `labels` (0 when none, or while the server is not up)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


class TopologyLauncher:
    """Creates topology processes for tests and cleans up after them."""

    def __init__(self, kafka: KafkaClientSettings, admin: AdminClient, workdir: Path) -> None:
        self._kafka = kafka
        self._admin = admin
        self._workdir = workdir
        self._launched: list[TopologyProcess] = []

    def create(self, name: str, inputs: list[str], **env: str) -> TopologyProcess:
        group = f"test-{name}-{uuid.uuid4().hex[:10]}"
        commit_at_end(self._kafka, group, inputs)
        prefix = f"JOBSTREAM_{name.upper()}_"
        port = free_port()
        process_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # Its group is not the identity's own: it reaches Kafka as the tests do.
            **self._kafka.environment(),
            f"{prefix}GROUP": group,
            f"{prefix}STATE_DIR": str(self._workdir / group / "state"),
            f"{prefix}METRICS_PORT": str(port),
            f"{prefix}COMMIT_INTERVAL_MS": "250",
            f"{prefix}SESSION_TIMEOUT_MS": "6000",
            **env,
        }
        (self._workdir / group).mkdir(parents=True, exist_ok=True)
        process = TopologyProcess(name, group, process_env, self._workdir / group / "process.log", port)
        self._launched.append(process)
        return process

    def close(self) -> None:
        for process in self._launched:
            process.stop()
        groups = tuple(f"__{process.group}--" for process in self._launched)
        internal = [name for name in self._admin.list_topics(timeout=10).topics if name.startswith(_INTERNAL)]
        doomed = [name for name in internal if any(group in name for group in groups)]
        if doomed:
            for future in self._admin.delete_topics(doomed, operation_timeout=30).values():
                future.result()


class EventProducer:
    """Produces Avro events keyed by a field of the record, with explicit, increasing timestamps if asked."""

    def __init__(self, kafka: KafkaClientSettings) -> None:
        self._producer: Producer = idempotent_producer(kafka)

    def send(
        self,
        topic: str,
        event: str,
        record: Mapping[str, Any],
        key_field: str = "job_id",
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> None:
        key = str(record[key_field]).encode()
        self.send_raw(topic, key, EVENTS[event].encode(record), timestamp_ms, partition=partition)

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        extra: dict[str, Any] = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
        if partition is not None:
            extra["partition"] = partition
        self._producer.produce(topic, key=key, value=value, headers=headers or [], **extra)
        self._producer.poll(0)

    def flush(self) -> None:
        if self._producer.flush(30) > 0:
            raise RuntimeError("test events not acknowledged within 30s")


@dataclass
class Output:
    record: Record
    key: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


class TopicReader:
    """Reads a topic read_committed from its current end (only what is written after the reader was created), or
    from its beginning."""

    def __init__(
        self, kafka: KafkaClientSettings, topic: str, event: EventSchema | None, *, from_beginning: bool = False
    ) -> None:
        self._event = event
        self._consumer = Consumer(
            {
                **kafka.client_config(),
                "group.id": f"test-reader-{uuid.uuid4().hex[:10]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        ends = end_offsets(kafka, topic)
        self._consumer.assign([TopicPartition(topic, p, 0 if from_beginning else high) for p, high in ends.items()])
        self.kept: list[Output] = []

    def read(
        self, keep: Callable[[Output], bool], until: Callable[[list[Output]], bool], timeout_s: float
    ) -> list[Output]:
        """Poll until `until(kept)` or the timeout; `self.kept` accumulates across calls."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not until(self.kept):
            message = self._consumer.poll(0.25)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(message.error())
            output = self._decode(message)
            if output is not None and keep(output):
                self.kept.append(output)
        return self.kept

    def _decode(self, message: Any) -> Output | None:
        value = message.value()
        if self._event is None:
            record: Record = {"raw": value}
        else:
            try:
                record = self._event.decode(value)
            except Exception:  # other tests' junk on a shared topic is not ours to judge
                return None
        headers = {key: header or b"" for key, header in (message.headers() or [])}
        return Output(record, message.key(), headers, message.partition(), message.offset())

    def close(self) -> None:
        self._consumer.close()


def ids(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def job_record(job_id: str, kind: str = "created", **fields: Any) -> Record:
    return dict(examples.job_lifecycle(job_id, kind, **fields))


def application_record(job_id: str, **fields: Any) -> Record:
    return dict(examples.application_created(job_id, **fields))
