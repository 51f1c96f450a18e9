"""``python -m stack.logged NAME -- COMMAND...``: run COMMAND, copying its output to .local/logs/NAME.log too.

The Procfile runs every process through this so each keeps its own log while honcho shows them all. It stays
alive exactly as long as COMMAND does and passes SIGTERM and SIGINT on, so honcho's stop (and its SIGKILL of
the process group after a grace period) reaches COMMAND, which a shell pipeline into `tee` would not ensure.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from types import FrameType

from jobstream.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.logged", description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required after --")
    log_dir = Settings.from_env().local_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    assert child.stdout is not None  # set by stdout=PIPE
    with open(log_dir / f"{args.name}.log", "ab") as log:
        for line in child.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            log.write(line)
            log.flush()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
