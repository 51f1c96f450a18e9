"""python -m stack up|down|status [--brokers N] [--all]: the local stack JOBSTREAM_STACK names (dev by default)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from jobstream.errors import JobstreamError
from jobstream.settings import LOCAL_STACKS, Settings
from stack.local import down, status, up

_STACK_VARIABLES = ("JOBSTREAM_LOCAL_DIR", "JOBSTREAM_KAFKA_BOOTSTRAP", "JOBSTREAM_MYSQL_URL", "JOBSTREAM_REDIS_URL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--brokers", type=int, help="Kafka nodes to run (default: JOBSTREAM_LOCAL_KAFKA_BROKERS, 1)")
    parser.add_argument("--all", action="store_true", help="down or status of every local stack: dev, test, bench")
    args = parser.parse_args(argv)
    if args.all and args.command == "up":
        parser.error("--all is for down and status: bring up one stack at a time")
    environ = dict(os.environ)
    if args.all:  # each stack at its own defaults, whatever this shell points at
        for variable in _STACK_VARIABLES:
            environ.pop(variable, None)
    names = list(LOCAL_STACKS) if args.all else [environ.get("JOBSTREAM_STACK", "dev")]
    try:
        for name in names:
            settings = Settings.from_env({**environ, "JOBSTREAM_STACK": name})
            if args.all and not settings.local_dir.exists():
                continue
            if args.brokers is not None:
                settings = replace(settings, local_kafka_brokers=args.brokers)
            if args.all:
                print(f"== {name} stack ({settings.local_dir})", flush=True)
            {"up": up, "down": down, "status": status}[args.command](settings)
    except JobstreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
