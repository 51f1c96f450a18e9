"""`python -m sinks mysql [--model NAME ...]` or `python -m sinks redis`: run one sink process until stopped."""

from __future__ import annotations

import argparse
import functools
import logging

from jobstream.process_metrics import process_registry
from jobstream.settings import Settings
from jobstream.stage_metrics import StageMetrics
from jobstream.stage_runner import run_stage
from sinks.app import build_mysql_application, build_redis_application
from sinks.metrics import SinkMetrics
from sinks.mysql.models import read_models


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sinks", description=__doc__)
    parser.add_argument("target", choices=["mysql", "redis"], help="which read-model store this process fills")
    parser.add_argument(
        "--model",
        action="append",
        choices=sorted(read_models()),
        help="MySQL only: the read models to fill (repeatable); all by default",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env(identity=f"sink-{args.target}")
    sinks = settings.sinks
    registry = process_registry()
    # Built once per process, outside `build`: a rebuilt Application keeps counting into the same series.
    sink_metrics = SinkMetrics(registry, args.target)
    if args.target == "mysql":
        metrics = StageMetrics(registry, sinks.mysql_group)
        metrics.serve(sinks.mysql_metrics_port)
        build = functools.partial(build_mysql_application, settings, metrics, sink_metrics, args.model)
    else:
        metrics = StageMetrics(registry, sinks.redis_group)
        metrics.serve(sinks.redis_metrics_port)
        build = functools.partial(build_redis_application, settings, metrics, sink_metrics)
    run_stage(f"sinks.{args.target}", build, on_recovery=metrics.recovered)


if __name__ == "__main__":
    main()
