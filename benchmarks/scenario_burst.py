"""Scenario 2, the burst: 10,000 applications from 1,000 concurrent connections (wrk, exact request cap).

First against the naive baseline (an endpoint that INSERTs each application into a scratch MySQL table on a
connection of its own), then against the gateway with its default limits. For each: the answers by status, p99,
and the most MySQL connections the server held (``Threads_connected`` polled in a side thread). Then a private
acceptance topology, started after the burst on a consumer group that begins where the burst began, decides the
burst, and the harness checks that every 202 became exactly one application.created and one application.decided
(read_committed, written by that group).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.baseline_apps import APPLY_PATH, NAIVE_POOL_SIZE, create_naive_table
from benchmarks.fixtures import (
    APPLICATION_BODY,
    WARM_NOTE,
    ConnectionWatch,
    create_jobs,
    scratch_database,
    warm_profiles,
    write_job_ids,
    write_tokens,
)
from benchmarks.kafka_tools import (
    acceptance_process,
    private_acceptance,
    read_from,
    written_by,
)
from benchmarks.report import Table, ratio
from benchmarks.scenario_gateway import gateway_env
from benchmarks.servers import http_server
from benchmarks.wrk import LoadResult, LoadSpec, read_ids, run_wrk
from jobstream.consumer_offsets import end_offsets
from jobstream.settings import Settings
from schemas import load_event_schemas
from schemas.topics import APPLICATION_CREATED, APPLICATION_DECIDED
from stack.processes import free_port
from state.migrate import connect

_NAIVE_TABLE = "naive_applications"


@dataclass(frozen=True)
class BurstPlan:
    requests: int
    connections: int
    threads: int
    # Every request is a distinct (candidate, job) pair, so the acceptance topology sees no duplicate.
    candidates: int
    jobs: int
    max_duration_s: float
    decide_timeout_s: float

    @classmethod
    def for_mode(cls, quick: bool) -> BurstPlan:
        if quick:
            return cls(500, 50, 1, 50, 10, 20, 60)
        return cls(10_000, 1_000, 2, 1_000, 10, 120, 180)


@dataclass
class BurstOutcome:
    load: LoadResult
    connections_before: int
    connections_peak: int
    rows: int | None = None


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    """The naive burst, the gateway burst, then the exactly-once check; one table for all three."""
    plan = BurstPlan.for_mode(quick)
    tokens_file, jobs_file = workdir / "tokens.txt", workdir / "jobs.txt"
    warm_profiles(settings, write_tokens(settings, plan.candidates, tokens_file))
    job_ids = write_job_ids(plan.jobs, jobs_file)

    def spec(ids_dir: Path | None) -> LoadSpec:
        return LoadSpec(
            APPLY_PATH,
            APPLICATION_BODY,
            tokens_file,
            jobs_file,
            plan.connections,
            plan.threads,
            plan.max_duration_s,
            total_requests=plan.requests,
            ids_dir=ids_dir,
        )

    naive = _naive_burst(settings, workdir, spec(None))
    with private_acceptance(settings, workdir) as acceptance:
        create_jobs(settings, job_ids)
        created_start = end_offsets(settings.kafka, APPLICATION_CREATED)
        decided_start = end_offsets(settings.kafka, APPLICATION_DECIDED)
        port = free_port()
        with (
            http_server("gateway", [], gateway_env(port), workdir / "gateway.log", port) as server,
            ConnectionWatch(settings) as watch,
        ):
            load = run_wrk(server.url, spec(workdir / "ids"), workdir)
        gateway = BurstOutcome(load, watch.before, watch.peak)
        accepted_ids = read_ids(workdir / "ids")
        with acceptance_process(acceptance):
            proof = _exactly_once(
                settings, set(job_ids), created_start, decided_start, accepted_ids, acceptance.group, plan
            )
    return _table(settings, plan, naive, gateway, proof)


def _naive_burst(settings: Settings, workdir: Path, spec: LoadSpec) -> BurstOutcome:
    with scratch_database(settings) as database:
        with connect(settings.mysql, database) as connection:
            create_naive_table(connection, _NAIVE_TABLE)
        port = free_port()
        args = ["naive", "--port", str(port), "--database", database, "--table", _NAIVE_TABLE]
        with (
            http_server("benchmarks.baseline_apps", args, {}, workdir / "naive.log", port) as server,
            ConnectionWatch(settings) as watch,
        ):
            load = run_wrk(server.url, spec, workdir)
        with connect(settings.mysql, database) as connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {_NAIVE_TABLE}")
            (rows,) = cursor.fetchone()
        return BurstOutcome(load, watch.before, watch.peak, rows)


@dataclass(frozen=True)
class ExactlyOnce:
    accepted: int
    created: Counter[str]
    decided: Counter[str]
    accepted_ids: set[str]

    @property
    def decided_once(self) -> int:
        return sum(1 for app in self.accepted_ids if self.decided[app] == 1)

    @property
    def decided_twice_or_more(self) -> int:
        return sum(1 for n in self.decided.values() if n > 1)

    @property
    def created_twice_or_more(self) -> int:
        return sum(1 for n in self.created.values() if n > 1)

    @property
    def missing(self) -> int:
        return sum(1 for app in self.accepted_ids if self.decided[app] == 0)

    @property
    def holds(self) -> bool:
        return (
            len(self.accepted_ids) == self.accepted
            and self.decided_once == self.accepted
            and self.decided_twice_or_more == 0
            and self.created_twice_or_more == 0
            and set(self.decided) <= set(self.created)
        )


def _exactly_once(
    settings: Settings,
    jobs: set[str],
    created_start: dict[int, int],
    decided_start: dict[int, int],
    accepted_ids: list[str],
    group: str,
    plan: BurstPlan,
) -> ExactlyOnce:
    events = load_event_schemas()
    kafka = settings.kafka
    ours = lambda message: message.key() is not None and message.key().decode() in jobs  # noqa: E731
    created_messages = read_from(
        kafka, APPLICATION_CREATED, created_start, ours, lambda kept: len(kept) >= len(accepted_ids), 30, 2.0
    )
    created = Counter(events["application_created"].decode(m.value())["application_id"] for m in created_messages)
    decided_messages = read_from(
        kafka,
        APPLICATION_DECIDED,
        decided_start,
        lambda message: ours(message) and written_by(message, group),
        lambda kept: len(kept) >= len(created),
        plan.decide_timeout_s,
        settle_s=3.0,
    )
    decided = Counter(events["application_decided"].decode(m.value())["application_id"] for m in decided_messages)
    return ExactlyOnce(len(accepted_ids), created, decided, set(accepted_ids))


def _table(
    settings: Settings, plan: BurstPlan, naive: BurstOutcome, gateway: BurstOutcome, proof: ExactlyOnce
) -> Table:
    gw = settings.gateway
    table = Table(f"Burst: {plan.requests:,} applications from {plan.connections:,} connections (wrk -t{plan.threads})")
    for name, outcome in (("naive MySQL INSERT", naive), ("gateway", gateway)):
        load = outcome.load
        table.add(f"{name}: answered / sent", f"{load.completed:,} / {load.issued:,}", "requests")
        table.add(f"{name}: 202", load.count(202), "requests")
        table.add(f"{name}: 429", load.count(429), "requests")
        table.add(f"{name}: 503", load.count(503), "requests")
        table.add(f"{name}: other 5xx", load.count_5xx_other_than(503), "requests")
        other = {s: n for s, n in load.statuses.items() if s not in (202, 429) and s < 500}
        if other:
            table.add(f"{name}: other statuses", str(other), "")
        table.add(f"{name}: socket errors (connect/read/write)", _socket_errors(load), "")
        if outcome.rows is not None:
            table.add(f"{name}: rows in its table after the burst", outcome.rows, "rows")
        table.add(f"{name}: burst wall time (first request to last answer)", load.duration_s, "s")
        table.add(f"{name}: 202/s over the burst", load.accepted_per_second(), "req/s")
        table.add(f"{name}: p50 / p99", f"{load.p50_ms:,.0f} / {load.p99_ms:,.0f}", "ms")
        table.add(
            f"{name}: MySQL Threads_connected before -> peak",
            f"{outcome.connections_before} -> {outcome.connections_peak}",
            "connections",
        )
    table.add(
        "ratio gateway / naive: 202/s", ratio(gateway.load.accepted_per_second(), naive.load.accepted_per_second()), "x"
    )
    table.add("ratio gateway / naive: p99", ratio(gateway.load.p99_ms, naive.load.p99_ms), "x")
    table.add(
        "ratio gateway / naive: extra MySQL connections at peak",
        ratio(gateway.connections_peak - gateway.connections_before, naive.connections_peak - naive.connections_before),
        "x",
    )
    table.add("gateway MySQL pool caps (read models + accounts)", 2 * gw.mysql_pool_size, "connections")
    added = gateway.connections_peak - gateway.connections_before
    table.add(
        "gateway: connections added at peak within the caps", "yes" if added <= 2 * gw.mysql_pool_size else "NO", ""
    )
    table.add("exactly once: 202 answers with an application id", len(proof.accepted_ids), "")
    table.add("exactly once: application.created events for the burst", sum(proof.created.values()), "")
    table.add("exactly once: 202s decided exactly once", proof.decided_once, "")
    table.add("exactly once: 202s not decided (within the timeout)", proof.missing, "")
    table.add("exactly once: applications decided twice or more", proof.decided_twice_or_more, "")
    table.add("exactly once: holds", "yes" if proof.holds else "NO", "")
    table.commands += [naive.load.command, gateway.load.command]
    table.notes += [
        f"gateway with its default limits: max_inflight {gw.max_inflight}, user {gw.user_rate_per_min}/min burst "
        f"{gw.user_burst}, IP {gw.ip_rate_per_min}/min burst {gw.ip_burst}, MySQL pool {gw.mysql_pool_size}; "
        f"each connection's requests carry one of {plan.candidates:,} candidates and its own X-Forwarded-For",
        f"naive baseline: same route, no auth or limits, INSERT autocommit per request on a pool of {NAIVE_POOL_SIZE} "
        "connections (Starlette's worker threads), scratch table in a scratch database dropped after; rows beyond "
        "its 202s are requests answered after wrk's time cap",
        WARM_NOTE,
        "Threads_connected counts every client of the server (other processes and the probe itself)",
        "decided events read with isolation.level=read_committed, kept only with the private acceptance group's "
        "jobstream-topology header, which started after the burst at the offsets the burst began at",
    ]
    return table


def _socket_errors(load: LoadResult) -> str:
    errors = load.errors
    return f"{errors['connect']} / {errors['read']} / {errors['write']}"
