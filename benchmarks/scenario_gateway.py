"""Scenario 1, the gateway's ceiling: accepted applications/s through the real gateway (JWT, validation, Redis
rate limit, Kafka acknowledgement) over a bare Starlette endpoint answering 202 under the same uvicorn settings.

Both servers get the same wrk load, interleaved (bare, gateway, bare, gateway...) so drift on a shared machine hits
both; the rate limits are raised through the environment so that the limiter is checked but never refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.baseline_apps import APPLY_PATH
from benchmarks.fixtures import APPLICATION_BODY, WARM_NOTE, warm_profiles, write_job_ids, write_tokens
from benchmarks.report import Table, ratio
from benchmarks.servers import Server, http_server
from benchmarks.wrk import LoadResult, LoadSpec, run_wrk
from jobstream.settings import Settings
from stack.processes import free_port

UNLIMITED = "100000000"


@dataclass(frozen=True)
class CeilingPlan:
    connections: int
    duration_s: float
    warmup_s: float
    rounds: int
    tokens: int
    jobs: int

    @classmethod
    def for_mode(cls, quick: bool) -> CeilingPlan:
        if quick:
            return cls(connections=8, duration_s=2, warmup_s=1, rounds=1, tokens=50, jobs=10)
        return cls(connections=64, duration_s=15, warmup_s=3, rounds=2, tokens=1_000, jobs=100)


def gateway_env(port: int, **overrides: str) -> dict[str, str]:
    """The gateway's environment for a benchmark: its port; wrk on 127.0.0.1 trusted as the proxy, so per-IP limits
    and per-client admission see the clients its X-Forwarded-For names, as behind a load balancer; no metrics
    listener (`make run`'s gateway may hold 9464, and no scenario scrapes it); plus any setting to change."""
    return {
        "JOBSTREAM_GATEWAY_PORT": str(port),
        "JOBSTREAM_GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
        "JOBSTREAM_GATEWAY_METRICS_PORT": "0",
        **{f"JOBSTREAM_GATEWAY_{k.upper()}": v for k, v in overrides.items()},
    }


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    """Measure both servers and return the table of throughput, latency and their ratios."""
    plan = CeilingPlan.for_mode(quick)
    tokens_file, jobs_file = workdir / "tokens.txt", workdir / "jobs.txt"
    warm_profiles(settings, write_tokens(settings, plan.tokens, tokens_file))
    write_job_ids(plan.jobs, jobs_file)

    def spec(duration_s: float) -> LoadSpec:
        return LoadSpec(APPLY_PATH, APPLICATION_BODY, tokens_file, jobs_file, plan.connections, 1, duration_s)

    gateway_port, bare_port = free_port(), free_port()
    env = gateway_env(
        gateway_port,
        user_rate_per_min=UNLIMITED,
        user_burst=UNLIMITED,
        ip_rate_per_min=UNLIMITED,
        ip_burst=UNLIMITED,
    )
    bare_results: list[Measured] = []
    gateway_results: list[Measured] = []
    with (
        http_server("gateway", [], env, workdir / "gateway.log", gateway_port) as gateway,
        http_server(
            "benchmarks.baseline_apps", ["bare", "--port", str(bare_port)], {}, workdir / "bare.log", bare_port
        ) as bare,
    ):
        # Warm both: connections to Kafka and Redis, first code paths.
        run_wrk(bare.url, spec(plan.warmup_s), workdir)
        run_wrk(gateway.url, spec(plan.warmup_s), workdir)
        for _ in range(plan.rounds):
            bare_results.append(_measured(bare, spec(plan.duration_s), workdir))
            gateway_results.append(_measured(gateway, spec(plan.duration_s), workdir))
    return _table(plan, bare_results, gateway_results)


@dataclass(frozen=True)
class Measured:
    load: LoadResult
    # Server CPU (all its threads) per 202, in ms: steadier than req/s on a machine others share.
    cpu_ms_per_accepted: float


def _measured(server: Server, spec: LoadSpec, workdir: Path) -> Measured:
    before = server.cpu_seconds()
    load = run_wrk(server.url, spec, workdir)
    used = server.cpu_seconds() - before
    return Measured(load, ratio(used * 1000, load.count(202)))


def _table(plan: CeilingPlan, bare: list[Measured], gateway: list[Measured]) -> Table:
    table = Table(
        f"Gateway ceiling: POST /v1/jobs/{{id}}/applications, wrk -t1 -c{plan.connections}, "
        f"{plan.rounds} x {plan.duration_s:g} s per server, interleaved"
    )
    bare_rate = _mean([m.load.accepted_per_second() for m in bare])
    gateway_rate = _mean([m.load.accepted_per_second() for m in gateway])
    table.add("bare Starlette 202/s (mean of rounds)", bare_rate, "req/s")
    table.add("gateway accepted (202, Kafka-acked)/s (mean of rounds)", gateway_rate, "req/s")
    table.add("ratio gateway / bare: throughput", ratio(gateway_rate, bare_rate), "x")
    bare_cpu = _mean([m.cpu_ms_per_accepted for m in bare])
    gateway_cpu = _mean([m.cpu_ms_per_accepted for m in gateway])
    table.add("bare: server CPU per 202 (mean of rounds)", bare_cpu, "ms")
    table.add("gateway: server CPU per 202 (mean of rounds)", gateway_cpu, "ms")
    table.add("ratio gateway / bare: CPU per request", ratio(gateway_cpu, bare_cpu), "x")
    for name, results in (("bare", bare), ("gateway", gateway)):
        for index, measured in enumerate(results, 1):
            load = measured.load
            table.add(
                f"{name} round {index}: 202/s, p50 / p95 / p99 ms",
                f"{load.accepted_per_second():,.0f}, {load.p50_ms:.1f} / {load.p95_ms:.1f} / {load.p99_ms:.1f}",
                "",
            )
            others = {s: n for s, n in sorted(load.statuses.items()) if s != 202}
            table.add(f"{name} round {index}: 202 / other statuses", f"{load.count(202):,} / {others or 0}", "")
    for label, pick in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")):
        bare_p = _mean([getattr(m.load, pick) for m in bare])
        gateway_p = _mean([getattr(m.load, pick) for m in gateway])
        table.add(f"{label}: bare / gateway", f"{bare_p:.1f} / {gateway_p:.1f}", "ms")
        table.add(f"ratio gateway / bare: {label}", ratio(gateway_p, bare_p), "x")
    table.commands += [bare[0].load.command, gateway[0].load.command]
    table.notes.append(
        f"{plan.tokens} candidate tokens x {plan.jobs} job ids, X-Forwarded-For spread over the tokens' users; "
        "gateway rate limits raised via JOBSTREAM_GATEWAY_{USER,IP}_{RATE_PER_MIN,BURST}=" + UNLIMITED
    )
    table.notes.append(WARM_NOTE)
    return table


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
