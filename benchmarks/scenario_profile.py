"""Where the gateway's event loop spends its time: `python -m gateway` under cProfile during the ceiling load.

cProfile sees only the event-loop thread (where every request's Python work runs), slows it down, and is
therefore never used for a figure elsewhere: this table ranks costs, in microseconds of loop time per request.
"""

from __future__ import annotations

import pstats
import signal
from pathlib import Path

from benchmarks.baseline_apps import APPLY_PATH
from benchmarks.fixtures import APPLICATION_BODY, warm_profiles, write_job_ids, write_tokens
from benchmarks.report import Table
from benchmarks.scenario_gateway import UNLIMITED, gateway_env
from benchmarks.servers import http_server
from benchmarks.wrk import LoadSpec, run_wrk
from jobstream.settings import Settings
from stack.processes import free_port

# Ranked entries: the gateway's own steps and the libraries they call on the request path.
_INTERESTING = (
    "gateway/",
    "jwt/",
    "redis/",
    "confluent_kafka",
    "cimpl",
    "logging/",
    "h11",
    "uvicorn/protocols",
    "starlette/",
    "ed25519",
    "json/",
)
_TOP = 15


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    duration_s, connections = (3, 8) if quick else (15, 64)
    tokens_file, jobs_file = workdir / "tokens.txt", workdir / "jobs.txt"
    warm_profiles(settings, write_tokens(settings, 50 if quick else 1_000, tokens_file))
    write_job_ids(100, jobs_file)
    port = free_port()
    limits = dict.fromkeys(("user_rate_per_min", "user_burst", "ip_rate_per_min", "ip_burst"), UNLIMITED)
    profile = workdir / "gateway.prof"
    spec = LoadSpec(APPLY_PATH, APPLICATION_BODY, tokens_file, jobs_file, connections, 1, duration_s)
    with http_server(
        "cProfile",
        ["-o", str(profile), "-m", "gateway"],
        gateway_env(port, **limits),
        workdir / "gateway.log",
        port,
        stop_signal=signal.SIGINT,
    ) as server:
        load = run_wrk(server.url, spec, workdir)
    requests = max(1, load.completed)
    stats = pstats.Stats(str(profile))
    table = Table(f"Gateway profile (cProfile, event-loop thread), wrk -t1 -c{connections} for {duration_s} s")
    table.add("requests answered under the profiler", load.completed, "")
    ranked = _ranked(stats)
    # The middleware chain nests every later step; the gateway's own steps show where the request's time goes.
    steps = [row for row in ranked if row[0].startswith("gateway/") or "api_jwt.py" in row[0] or "(_log)" in row[0]]
    for name, cumulative, own in steps[:_TOP]:
        table.add(
            f"cumulative: {name}", f"{cumulative / requests * 1e6:,.0f} (own {own / requests * 1e6:,.0f})", "us/req"
        )
    for name, _, own in sorted(ranked, key=lambda row: row[2], reverse=True)[:_TOP]:
        table.add(f"own time: {name}", f"{own / requests * 1e6:,.0f}", "us/req")
    table.commands.append(load.command)
    table.notes.append(
        "microseconds of event-loop time per answered request, inflated by cProfile; compare rows, not runs; "
        "startup (imports, compiling without .pyc) is excluded by the filters"
    )
    return table


def _ranked(stats: pstats.Stats) -> list[tuple[str, float, float]]:
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        label = f"{filename}:{line}({function})"
        if not any(part in label for part in _INTERESTING) or calls < 100:
            continue
        short = label.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append((short, cumulative, own))
    rows.sort(key=lambda row: row[1], reverse=True)
    return rows
