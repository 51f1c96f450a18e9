"""`python -m benchmarks <scenario>|all [--quick] [--report PATH]`: run, print each table, append to the report.

Scenarios: gateway (ceiling ratio), burst (10,000 applications from 1,000 connections vs a naive MySQL endpoint),
sink (batched rows/s vs row-at-a-time), topology (acceptance msgs/s vs a raw consume->produce loop),
freshness (202 -> visible in MySQL/Redis vs the bus, and the highest rate with no consumer lag growing),
replay (events/s rebuilding the applications read model from 1,000,000 events vs a raw read + Avro decode),
profile (the gateway under py-spy during the ceiling load: a ranking, not a figure).
`--quick` runs each for a few seconds (the CI smoke); its figures say only that the harness works.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    scenario_burst,
    scenario_freshness,
    scenario_gateway,
    scenario_profile,
    scenario_replay,
    scenario_sink,
    scenario_topology,
)
from benchmarks.report import Table, append_report
from jobstream.errors import JobstreamError
from jobstream.settings import Settings
from stack.local import up

Scenario = Callable[[Settings, Path, bool], Table]
SCENARIOS: dict[str, Scenario] = {
    "gateway": scenario_gateway.run,
    "burst": scenario_burst.run,
    "sink": scenario_sink.run,
    "topology": scenario_topology.run,
    "freshness": scenario_freshness.run,
    "replay": scenario_replay.run,
    "profile": scenario_profile.run,
}
DEFAULT_REPORT = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario (smoke, not figures)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help=f"Markdown to append to ({DEFAULT_REPORT})")
    args = parser.parse_args(argv)
    # Benchmarks write tens of thousands of events: into their own stack, never the platform's (its children too).
    os.environ.setdefault("JOBSTREAM_STACK", "bench")
    try:
        settings = Settings.from_env()
        up(settings)
    except JobstreamError as error:
        print(f"benchmarks: {error}", file=sys.stderr)
        return 2
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    tables = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
            table = SCENARIOS[name](settings, Path(workdir), args.quick)
        table.commands.insert(0, command)
        print(table.text(), flush=True)
        print(flush=True)
        tables.append(table)
    append_report(args.report, command, settings, tables)
    print(f"appended to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
