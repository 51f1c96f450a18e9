"""Scenario 5, end-to-end freshness: at fixed offered rates, how long from the gateway's acceptance of an
application (its ``submitted_at``) until its decision is a row in MySQL and a hash in Redis; and the highest of
those rates the pipeline sustains, i.e. with the consumer lag of the topology and both sinks not growing.

Everything runs privately beside the shared stack: the gateway, an acceptance topology and both sinks on consumer
groups that start at the current end of their topics, the MySQL sink writing to a scratch database, the Redis sink
to a scratch Redis database (an empty one, emptied again after). Baseline in the same run: the bus itself, i.e.
how long until the application.created event is readable by a plain consumer. Side threads poll MySQL and Redis
every `_POLL_S`, which bounds the resolution. Another samples each group's total lag every `_LAG_SAMPLE_S`; its
least-squares slope over the load (after `_LAG_WARMUP_S`) says whether the lag grew.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from benchmarks.baseline_apps import APPLY_PATH
from benchmarks.fixtures import APPLICATION_BODY, create_jobs, scratch_database, warm_profiles, write_tokens
from benchmarks.kafka_tools import (
    acceptance_process,
    private_acceptance,
    reader_consumer,
)
from benchmarks.report import Table, ratio
from benchmarks.scenario_gateway import gateway_env
from benchmarks.servers import http_server, python_process
from benchmarks.wrk import LoadResult, LoadSpec, run_wrk
from jobstream.consumer_offsets import commit_at_end, end_offsets
from jobstream.settings import KafkaClientSettings, Settings
from schemas import load_event_schemas
from schemas.topics import APPLICATION_CREATED, APPLICATION_DECIDED, APPLICATION_STAGE_CHANGED
from sinks.redis.plans import plans
from sinks.sre.lag import group_lag
from stack.processes import free_port
from state import redis_keys
from state.migrate import connect

_POLL_S = 0.05
_SCRATCH_REDIS_DB = 15
# Enough that the offered rate, not the answers' latency, paces the load (connections > rate x latency).
_CONNECTIONS = 200
_LAG_SAMPLE_S = 1.0
_LAG_WARMUP_S = 5.0
# A rate is "fully accepted" with this share of it answered 202, and has "no lag growing" when no group's lag
# grows faster than that share of it (checkpoints commit once a second: committed offsets move in steps of
# about rate x 1 s, hence the tolerance).
_ACHIEVED_SHARE = 0.95
_LAG_SLOPE_SHARE = 0.05


@dataclass(frozen=True)
class FreshnessPlan:
    rates: tuple[int, ...]
    seconds_per_rate: float
    catch_up_s: float

    @property
    def lag_warmup_s(self) -> float:
        return min(_LAG_WARMUP_S, self.seconds_per_rate / 4)

    @classmethod
    def for_mode(cls, quick: bool) -> FreshnessPlan:
        return cls((50,), 4, 60) if quick else cls((100, 200, 300, 400, 500, 1_000, 2_000), 30, 120)


class FirstSeen:
    """Polls `probe(pending ids) -> ids now visible` in a side thread and stamps when each first appeared."""

    def __init__(self, name: str, probe: Callable[[list[str]], set[str]], wanted: Callable[[], list[str]]) -> None:
        self.name = name
        self.seen: dict[str, float] = {}
        self._probe = probe
        self._wanted = wanted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"first-seen-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pending = [app for app in self._wanted() if app not in self.seen]
            if pending:
                now = time.time()
                for app in self._probe(pending):
                    self.seen.setdefault(app, now)
            self._stop.wait(_POLL_S)


class CreatedTail:
    """The baseline: a plain consumer on application.created, stamping each of our applications on arrival."""

    def __init__(self, kafka: KafkaClientSettings, jobs: set[str]) -> None:
        self.submitted: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self._event = load_event_schemas()["application_created"]
        self._consumer = reader_consumer(kafka, **{"fetch.wait.max.ms": 10})
        start = end_offsets(kafka, APPLICATION_CREATED)
        self._consumer.assign([TopicPartition(APPLICATION_CREATED, p, o) for p, o in start.items()])
        self._jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="created-tail", daemon=True)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.submitted)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(500, timeout=0.05):
                if message.error() is not None or message.key() is None or message.key().decode() not in self._jobs:
                    continue
                now = time.time()
                record = self._event.decode(message.value())
                with self._lock:
                    self.arrived[record["application_id"]] = now
                    self.submitted[record["application_id"]] = record["submitted_at"].timestamp()


@dataclass(frozen=True)
class PrivatePipeline:
    """The gateway, acceptance topology and sinks this scenario runs beside the shared stack."""

    gateway_url: str
    database: str
    redis_url: str
    groups: tuple[str, ...]


class LagSampler:
    """Samples the total lag of each group every `_LAG_SAMPLE_S` in a side thread."""

    def __init__(self, kafka: KafkaClientSettings, groups: tuple[str, ...]) -> None:
        self.samples: dict[str, list[tuple[float, int]]] = {group: [] for group in groups}
        self._kafka = kafka
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def slope(self, group: str, after_s: float) -> float | None:
        """Least-squares growth of `group`'s lag in messages/s over the samples taken `after_s` past the first."""
        samples = self.samples[group]
        if not samples:
            return None
        kept = [(t, lag) for t, lag in samples if t - samples[0][0] >= after_s]
        if len(kept) < 3:
            return None
        return statistics.linear_regression([t for t, _ in kept], [lag for _, lag in kept]).slope

    def _run(self) -> None:
        while not self._stop.is_set():
            for group, samples in self.samples.items():
                samples.append((time.monotonic(), sum(row.lag for row in group_lag(self._kafka, group))))
            self._stop.wait(_LAG_SAMPLE_S)


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    plan = FreshnessPlan.for_mode(quick)
    tokens_file = workdir / "tokens.txt"
    candidates = 2_000
    warm_profiles(settings, write_tokens(settings, candidates, tokens_file))
    table = Table("End-to-end freshness: 202 -> decision visible in MySQL and Redis, at fixed offered rates")
    kafka = settings.kafka
    with (
        private_acceptance(settings, workdir) as acceptance,
        scratch_database(settings, migrated=True) as database,
        _scratch_redis(settings) as redis_url,
    ):
        mysql_group, redis_group = (
            f"bench-sink-mysql-{uuid.uuid4().hex[:8]}",
            f"bench-sink-redis-{uuid.uuid4().hex[:8]}",
        )
        commit_at_end(kafka, mysql_group, [APPLICATION_DECIDED, APPLICATION_STAGE_CHANGED])
        commit_at_end(kafka, redis_group, list(plans()))
        sink_env = {
            **kafka.environment(),
            "JOBSTREAM_MYSQL_URL": _mysql_url(settings, database),
            "JOBSTREAM_REDIS_URL": redis_url,
            "JOBSTREAM_SINKS_MYSQL_GROUP": mysql_group,
            "JOBSTREAM_SINKS_REDIS_GROUP": redis_group,
            "JOBSTREAM_LOCAL_DIR": str(workdir / "local"),
        }
        port = free_port()
        with (
            acceptance_process(acceptance),
            python_process("sinks", ["mysql", "--model", "applications"], sink_env, workdir / "sink-mysql.log"),
            python_process("sinks", ["redis"], sink_env, workdir / "sink-redis.log"),
            http_server("gateway", [], gateway_env(port), workdir / "gateway.log", port) as server,
        ):
            pipeline = PrivatePipeline(server.url, database, redis_url, (acceptance.group, mysql_group, redis_group))
            _wait_stable(kafka, list(pipeline.groups), 90)
            steady: dict[int, float] = {}  # offered rate -> accepted/s, for the rates with no lag growing
            for rate in plan.rates:
                # Fresh jobs per rate, enough that no (candidate, job) pair repeats: a repeat is a duplicate
                # application, which the topology counts but does not decide, so it would never become visible.
                jobs_file = workdir / f"jobs-{rate}.txt"
                job_ids = [str(uuid.uuid4()) for _ in range(math.ceil(rate * plan.seconds_per_rate * 2 / candidates))]
                jobs_file.write_text("\n".join(job_ids) + "\n")
                create_jobs(settings, job_ids)
                load, lag_steady = _measure(settings, pipeline, rate, plan, tokens_file, jobs_file, set(job_ids), table)
                if lag_steady:
                    steady[rate] = load.accepted_per_second()
            fully = [rate for rate, accepted in steady.items() if accepted >= _ACHIEVED_SHARE * rate]
            table.add("highest accepted rate with no lag growing", f"{max(steady.values(), default=0):,.0f}", "/s")
            table.add("highest offered rate fully accepted, no lag growing", f"{max(fully, default=0):,}", "/s")
        _delete_groups(kafka, [mysql_group, redis_group])
    table.notes += [
        f"wrk -c{_CONNECTIONS}, paced to each offered rate for {plan.seconds_per_rate:g} s; gateway with default "
        "limits; acceptance + MySQL sink (model applications, scratch database) + Redis sink (scratch db "
        f"{_SCRATCH_REDIS_DB}) on private consumer groups; polled every {_POLL_S * 1000:.0f} ms; new jobs per rate",
        "freshness = first poll that saw it - submitted_at (stamped by the gateway just before producing); "
        "baseline = arrival at a plain application.created consumer, same clock",
        f"no lag growing = every group's lag (sampled every {_LAG_SAMPLE_S:g} s, after the first "
        f"{plan.lag_warmup_s:g} s) growing by at most {_LAG_SLOPE_SHARE:.0%} of the offered rate (least-squares "
        f"slope); fully accepted = at least {_ACHIEVED_SHARE:.0%} of the offered rate answered 202",
    ]
    return table


def _measure(
    settings: Settings,
    pipeline: PrivatePipeline,
    rate: int,
    plan: FreshnessPlan,
    tokens_file: Path,
    jobs_file: Path,
    jobs: set[str],
    table: Table,
) -> tuple[LoadResult, bool]:
    """One offered rate: its freshness and lag rows in `table`; the load, and whether no group's lag grew."""
    tail = CreatedTail(settings.kafka, jobs)
    mysql_conn = connect(settings.mysql, pipeline.database)
    redis_client = redis.Redis.from_url(pipeline.redis_url, socket_timeout=5)

    def in_mysql(pending: list[str]) -> set[str]:
        with mysql_conn.cursor() as cursor:
            cursor.execute("SELECT application_id FROM applications WHERE status <> 'pending'")
            return {row[0] for row in cursor.fetchall()} & set(pending)

    def in_redis(pending: list[str]) -> set[str]:
        pipe = redis_client.pipeline(transaction=False)
        for app in pending:
            pipe.exists(redis_keys.application(app))
        return {app for app, found in zip(pending, pipe.execute(), strict=True) if found}

    watchers = [FirstSeen("MySQL", in_mysql, tail.ids), FirstSeen("Redis", in_redis, tail.ids)]
    lag = LagSampler(settings.kafka, pipeline.groups)
    tail.start()
    for watcher in watchers:
        watcher.start()
    try:
        spec = LoadSpec(
            APPLY_PATH,
            APPLICATION_BODY,
            tokens_file,
            jobs_file,
            _CONNECTIONS,
            1,
            plan.seconds_per_rate,
            rate_per_s=rate,
        )
        lag.start()
        try:
            load = run_wrk(pipeline.gateway_url, spec, Path(tokens_file).parent)
        finally:
            lag.stop()
        deadline = time.monotonic() + plan.catch_up_s
        while time.monotonic() < deadline and any(
            len(w.seen) < load.count(202) or len(tail.submitted) < load.count(202) for w in watchers
        ):
            time.sleep(0.2)
    finally:
        for watcher in watchers:
            watcher.stop()
        tail.stop()
        mysql_conn.close()
        redis_client.close()
    _rows(table, rate, load, tail, watchers)
    return load, _lag_rows(table, rate, lag, pipeline.groups, plan.lag_warmup_s)


def _rows(table: Table, rate: int, load: LoadResult, tail: CreatedTail, watchers: list[FirstSeen]) -> None:
    bus = [tail.arrived[a] - tail.submitted[a] for a in tail.submitted]
    table.add(
        f"{rate}/s offered: accepted (202) / achieved rate",
        f"{load.count(202):,} / {load.accepted_per_second():,.0f}",
        "/s",
    )
    refused = {status: n for status, n in sorted(load.statuses.items()) if status != 202}
    if refused:
        table.add(f"{rate}/s: other answers", ", ".join(f"{n:,} x {status}" for status, n in refused.items()), "")
    table.add(f"{rate}/s: baseline bus (created readable) p50 / p99", _p50_p99(bus), "ms")
    for watcher in watchers:
        fresh = [watcher.seen[a] - tail.submitted[a] for a in tail.submitted if a in watcher.seen]
        table.add(f"{rate}/s: visible in {watcher.name} p50 / p99", _p50_p99(fresh), "ms")
        table.add(f"{rate}/s: visible in {watcher.name} / accepted", f"{len(fresh):,} / {load.count(202):,}", "")
        if fresh and bus:
            table.add(
                f"{rate}/s: ratio {watcher.name} p50 / bus p50",
                ratio(statistics.median(fresh), statistics.median(bus)),
                "x",
            )
    table.commands.append(load.command)


def _lag_rows(table: Table, rate: int, lag: LagSampler, groups: tuple[str, ...], warmup_s: float) -> bool:
    slopes = {group: lag.slope(group, warmup_s) for group in groups}
    for group, slope in slopes.items():
        peak = max((value for _, value in lag.samples[group]), default=0)
        shown = "n/a" if slope is None else f"{slope:+,.1f} msg/s, peak {peak:,}"
        table.add(f"{rate}/s: lag growth of {group.rsplit('-', 1)[0]}", shown, "")
    steady = all(slope is not None and slope <= _LAG_SLOPE_SHARE * rate for slope in slopes.values())
    table.add(f"{rate}/s: no lag growing", "yes" if steady else "no", "")
    return steady


def _p50_p99(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49] * 1000:,.0f} / {cuts[98] * 1000:,.0f}"


def _mysql_url(settings: Settings, database: str) -> str:
    address = settings.mysql
    credentials = f"{quote(address.user, safe='')}:{quote(address.password, safe='')}"
    return f"mysql://{credentials}@{address.host}:{address.port}/{database}"


@contextlib.contextmanager
def _scratch_redis(settings: Settings) -> Iterator[str]:
    """Redis database `_SCRATCH_REDIS_DB` on the same server, which must be empty; emptied again after."""
    url = urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{_SCRATCH_REDIS_DB}"))  # its user and password kept
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        if client.dbsize() != 0:
            raise RuntimeError(f"Redis database {_SCRATCH_REDIS_DB} is not empty: the benchmark will not use it")
        try:
            yield url
        finally:
            client.flushdb()


def _wait_stable(kafka: KafkaClientSettings, groups: list[str], timeout_s: float) -> None:
    """Until every group has members and is Stable (its partitions assigned)."""
    from confluent_kafka import ConsumerGroupState

    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = {g: f.result() for g, f in admin.describe_consumer_groups(groups).items()}
        if all(d.state == ConsumerGroupState.STABLE and d.members for d in described.values()):
            return
        time.sleep(0.5)
    raise RuntimeError(f"consumer groups not stable within {timeout_s:g} s: {groups}")


def _delete_groups(kafka: KafkaClientSettings, groups: list[str]) -> None:
    admin = AdminClient({**kafka.client_config(), "log_level": 0})
    time.sleep(1)
    for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
        with contextlib.suppress(Exception):
            future.result()
