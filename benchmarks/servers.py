"""The processes a benchmark starts and stops itself: a server on a free loopback port, or a topology."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from jobstream.settings import PROJECT_ROOT

_READY_TIMEOUT_S = 60.0


def python_process(
    module: str, args: list[str], env: Mapping[str, str], log_path: Path
) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """`python -m module args` as a `command_process`, stopped with SIGTERM."""
    return command_process(python_command(module, args), env, log_path)


def python_command(module: str, args: list[str]) -> list[str]:
    """The command line of `python -m module args` with this interpreter, warnings off."""
    return [sys.executable, "-W", "ignore", "-m", module, *args]


@contextlib.contextmanager
def command_process(
    command: list[str], env: Mapping[str, str], log_path: Path, stop_signal: int = signal.SIGTERM
) -> Iterator[subprocess.Popen]:
    """`command` run from the project root with `env` added to ours, output to `log_path`; stopped with
    `stop_signal` (then killed) after, unless it has exited by then."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        _stop(process, stop_signal)


@contextlib.contextmanager
def http_server(
    module: str,
    args: list[str],
    env: Mapping[str, str],
    log_path: Path,
    port: int,
) -> Iterator[Server]:
    """A server process listening on 127.0.0.1:`port`, yielded once it accepts connections."""
    with python_process(module, args, env, log_path) as process:
        wait_listening(process, port, log_path)
        yield Server(f"http://127.0.0.1:{port}", process.pid)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process, all its threads (librdkafka's included), so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, utime and stime are fields 14 and 15 (1-based, man proc).
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_listening(process: subprocess.Popen, port: int, log_path: Path) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`; raise if `process` exits first."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on port {port} within {_READY_TIMEOUT_S:g} s")


def _stop(process: subprocess.Popen, stop_signal: int) -> None:
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
