"""`python -m sinks mysql [--model NAME ...]` or `python -m sinks redis`: run one sink process until stopped."""

from __future__ import annotations

import argparse
import logging

from jobstream.settings import Settings
from sinks.app import build_mysql_application, build_redis_application
from sinks.models import read_models


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
    settings = Settings.from_env()
    if args.target == "mysql":
        build_mysql_application(settings, args.model).run()
    else:
        build_redis_application(settings).run()


if __name__ == "__main__":
    main()
