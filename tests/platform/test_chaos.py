"""Chaos under load: the running platform keeps every 202 while its parts are paused, killed and taken away.

One platform (the Procfile under the supervisor, tests.chaos_harness) takes a steady stream of applications while,
in turn: Redis is paused 30 s, MariaDB 60 s, the acceptance process 20 s, the MySQL sink 20 s, and the single broker
is killed with SIGKILL and started again 20 s later; then a second platform on a 3-broker cluster (replication
factor 3, min.insync.replicas 2) loses one broker for good. After each fault: every application answered 202 so
far is decided exactly once and visible in MySQL within 60 s of the recovery, every process is running, and any
restart was made by the supervisor with a logged reason. The figures go to <local_dir>/reports/chaos.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from benchmarks.fixtures import scratch_database
from jobstream.settings import PROJECT_ROOT, KafkaClientSettings, Settings
from jobstream.topic_admin import reconcile_topics
from schemas.topics import topic_catalog
from stack.kafka import KafkaCluster
from stack.local import local_kafka
from stack.processes import read_pid
from tests.chaos_harness import Decisions, Load, Platform, converged, seed
from tests.e2e_harness import wait_for
from tests.kafka_helpers import provisioned

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

PLATFORM_REDIS_DB = 10
CLUSTER_REDIS_DB = 9
RECOVERY_S = 60


class Report:
    """One row per fault: what the load's clients saw during it, how long until every 202 had landed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[str] = []

    def add(
        self,
        fault: str,
        load: Load,
        began: float,
        ended: float,
        served_s: float,
        recovered_s: float,
        platform: Platform,
    ) -> None:
        statuses = load.statuses(began, ended)
        seen = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items(), key=str)) or "none"
        restarts = ", ".join(f"{name} {n}" for name, n in sorted(platform.restarts().items())) or "none"
        accepted = len(load.accepted_ids())
        lasted = f"{ended - began:.0f} s"
        self.rows.append(
            f"| {fault} | {lasted} | {seen} | {served_s:.1f} s | {recovered_s:.1f} s | {accepted} | {restarts} |"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = [
            "| fault | lasted | answers during it | next 202 after | all 202s in MySQL after | 202s | restarts |",
            "| --- | ---: | --- | ---: | ---: | ---: | --- |",
        ]
        self.path.write_text("\n".join([*header, *self.rows]) + "\n")


@pytest.fixture(scope="module")
def report(settings: Settings) -> Report:
    return Report(settings.local_dir / "reports" / "chaos.md")


@contextlib.contextmanager
def running_platform(
    settings: Settings, workdir: Path, redis_db: int, kafka: KafkaClientSettings
) -> Iterator[Platform]:
    with scratch_database(settings, migrated=True, prefix="jobstream_chaos") as database:
        platform = Platform(settings, workdir, database, redis_db, kafka)
        try:
            yield platform.start()
        finally:
            platform.stop()
            print(platform.supervisor_log()[-5000:])


@contextlib.contextmanager
def under_load(platform: Platform) -> Iterator[tuple[Load, Decisions]]:
    candidates, jobs = seed(platform, candidates=30, jobs=60)
    decisions = Decisions(platform)
    load = Load(platform.gateway_url, candidates, jobs).start()
    try:
        yield load, decisions
    finally:
        load.stop()
        decisions.close()


@pytest.fixture(scope="module")
def platform(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(settings, tmp_path_factory.mktemp("chaos"), PLATFORM_REDIS_DB, settings.kafka) as p:
        yield p


@pytest.fixture(scope="module")
def traffic(platform: Platform) -> Iterator[tuple[Load, Decisions]]:
    with under_load(platform) as running:
        load, _ = running
        wait_for(lambda: len(load.accepted_ids()) >= 50, 60, "the first 50 applications answered 202")
        converged(platform, *running, timeout_s=90)  # the platform decides before any fault
        yield running


def pause(pid: int, seconds: float) -> None:
    """SIGSTOP then SIGCONT: a GC pause, a VM stall, a slow disk."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def survive(
    fault: str, action: Callable[[], None], platform: Platform, traffic: tuple[Load, Decisions], report: Report
) -> None:
    """Run `action` (the fault and its end) under load, then check everything the module docstring promises."""
    load, decisions = traffic
    before = load.accepted_ids()
    began = time.monotonic()
    action()
    ended = time.monotonic()
    at_fault_end = load.accepted_ids()
    wait_for(lambda: load.accepted_ids() - at_fault_end, RECOVERY_S, "a 202 for a new application after the fault")
    served_s = time.monotonic() - ended
    converged(platform, load, decisions, timeout_s=RECOVERY_S)
    recovered_s = time.monotonic() - ended
    wait_for(lambda: not platform.not_running(), 30, "every process to run")
    assert load.accepted_ids() > before
    log = platform.supervisor_log()
    for name, restarts in platform.restarts().items():
        exits = log.count(f"EXITED {name} (pid")
        assert exits >= restarts, f"{name}: {restarts} restarts but {exits} logged exits\n{log[-3000:]}"
    report.add(fault, load, began, ended, served_s, recovered_s, platform)


def test_redis_paused_30s(platform, traffic, report, settings):
    pid = read_pid(settings.local_dir / "redis" / "redis.pid")
    if pid is None:
        pytest.skip("Redis is not the local stack's own: it cannot be paused here")
    survive("Redis paused (SIGSTOP) 30 s", lambda: pause(pid, 30), platform, traffic, report)


def test_mariadb_paused_60s(platform, traffic, report, settings):
    pid = read_pid(settings.local_dir / "mariadb" / "mariadb.pid")
    if pid is None:
        pytest.skip("MariaDB is not the local stack's own: it cannot be paused here")
    survive("MariaDB paused (SIGSTOP) 60 s", lambda: pause(pid, 60), platform, traffic, report)


def test_the_acceptance_process_paused_20s(platform, traffic, report):
    pid = platform.pid("acceptance")
    survive("acceptance process paused 20 s", lambda: pause(pid, 20), platform, traffic, report)
    assert platform.pid("acceptance") == pid, "acceptance recovered by a restart, not by itself"


def test_the_mysql_sink_paused_20s(platform, traffic, report):
    pid = platform.pid("sink_mysql")
    survive("MySQL sink paused 20 s", lambda: pause(pid, 20), platform, traffic, report)
    assert platform.pid("sink_mysql") == pid, "the sink recovered by a restart, not by itself"


def test_the_single_broker_killed_and_started_again_after_20s(platform, traffic, report, settings):
    kafka = local_kafka(settings, brokers=1)

    def kill_and_restart() -> None:
        [pid] = kafka.running_pids().values()
        os.kill(pid, signal.SIGKILL)
        time.sleep(20)
        # As an operator would: `stack up` starts what is not running (here, the broker) and leaves it running.
        subprocess.run([sys.executable, "-m", "stack", "up"], cwd=PROJECT_ROOT, check=True, capture_output=True)

    survive("the only broker killed (SIGKILL), back after 20 s", kill_and_restart, platform, traffic, report)


@dataclass(frozen=True)
class ThreeBrokers:
    cluster: KafkaCluster
    # The tests' own Kafka client settings, on this cluster.
    kafka: KafkaClientSettings


@pytest.fixture(scope="module")
def three_brokers(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreeBrokers]:
    # Below the kernel's ephemeral range (32768+): a client socket's local port can never hold a listener's port.
    cluster = KafkaCluster(
        root=tmp_path_factory.mktemp("chaos-kafka-3"), jar_cache=settings.jar_cache, brokers=3, base_port=31092
    )
    try:
        cluster.start(timeout_s=240)
        kafka = provisioned(cluster, settings.kafka)
        admin = AdminClient({**kafka.client_config(), "log_level": 0})
        reconcile_topics(admin, topic_catalog(replication_factor=3), min_insync_replicas=2)
        yield ThreeBrokers(cluster, kafka)
    finally:
        cluster.stop()


def test_one_broker_of_three_killed_for_good(settings, three_brokers, report, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chaos-rf3")
    with (
        running_platform(settings, workdir, CLUSTER_REDIS_DB, three_brokers.kafka) as platform,
        under_load(platform) as traffic,
    ):
        load, _ = traffic
        wait_for(lambda: len(load.accepted_ids()) >= 50, 60, "the first 50 applications answered 202")
        converged(platform, *traffic, timeout_s=90)
        admin = AdminClient({**three_brokers.kafka.client_config(), "log_level": 0})
        partitions = admin.list_topics("application.created", timeout=10).topics["application.created"].partitions
        leader = partitions[0].leader
        victim = three_brokers.cluster.running_pids()[leader]

        def kill_one() -> None:
            os.kill(victim, signal.SIGKILL)
            time.sleep(20)  # the load goes on against two brokers

        survive(f"broker {leader} of 3 killed (SIGKILL), not restarted", kill_one, platform, traffic, report)
