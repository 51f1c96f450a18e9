"""``python -m stack.supervisor [--procfile Procfile]``: run every Procfile process and restart whichever exits.

Each runs in its own process group, its output on the terminal and in <local_dir>/logs/<name>.log. An exit is
restarted after an exponential backoff, a crash loop is marked failed, and nothing a process does stops the others:
only SIGINT, SIGTERM or SIGHUP does. State in <local_dir>/supervisor/state.json, metrics on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from jobstream.errors import JobstreamError
from jobstream.settings import PROJECT_ROOT, Settings, SupervisorSettings
from stack import processes
from stack.errors import StackError

STOP_GRACE_S = 15.0
_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(\S.*)$")


def parse_procfile(text: str) -> dict[str, list[str]]:
    """Each process name and its command, split into words as a shell would (no shell runs it)."""
    commands: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line.strip())
        if match is None or match[1] in commands:
            raise StackError(f"Procfile line {number}: expected `name: command` with a new name, got {line!r}")
        commands[match[1]] = shlex.split(match[2])
    if not commands:
        raise StackError("the Procfile names no process")
    return commands


def pid_file(local_dir: Path) -> Path:
    return local_dir / "supervisor" / "supervisor.pid"


def read_state(local_dir: Path) -> dict[str, Any] | None:
    """The supervisor's last state.json, or None if no supervisor ever ran with this local dir."""
    try:
        return dict(json.loads((local_dir / "supervisor" / "state.json").read_text()))
    except FileNotFoundError:
        return None


@dataclass
class _Status:
    """One process as state.json shows it; times in epoch seconds, last_exit a code or a signal's name."""

    pid: int | None = None
    state: str = "stopped"  # running, backoff, failed or stopped
    restarts: int = 0
    last_exit: int | str | None = None
    last_exit_at: float | None = None
    started_at: float | None = None


class Supervisor:
    def __init__(
        self, commands: dict[str, list[str]], policy: SupervisorSettings, local_dir: Path, env: dict[str, str]
    ) -> None:
        self._commands = commands
        self._policy = policy
        self._env = env
        self._local_dir = local_dir
        self._status = {name: _Status() for name in commands}
        self._popens: dict[str, subprocess.Popen[bytes] | None] = dict.fromkeys(commands)
        self._pumps: list[threading.Thread] = []
        self._width = max(len(name) for name in [*commands, "supervisor"])
        # Guards state.json and keeps lines from different threads whole on the terminal.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._signals = 0
        registry = self._registry = CollectorRegistry()
        self._restarts = Counter(
            "jobstream_process_restarts", "Restarts, by exit", ["process", "reason"], registry=registry
        )
        self._up = Gauge("jobstream_process_up", "1 while the process runs", ["process"], registry=registry)
        self._failed = Gauge("jobstream_process_failed", "1 once restarts ended", ["process"], registry=registry)
        for name in commands:
            self._up.labels(name).set(0)
            self._failed.labels(name).set(0)

    def run(self) -> None:
        """Start every process and keep each running until SIGINT or SIGTERM, then stop them all."""
        if (other := processes.read_pid(pid_file(self._local_dir))) is not None:
            raise StackError(f"a supervisor already runs with this local dir (pid {other}); stop it with `make down`")
        for folder in ("logs", "supervisor"):
            (self._local_dir / folder).mkdir(parents=True, exist_ok=True)
        server = None
        if port := self._policy.metrics_port:
            processes.ensure_port_free(port, "the supervisor's metrics")
            server, _ = start_http_server(port, addr="127.0.0.1", registry=self._registry)
        pid_file(self._local_dir).write_text(f"{os.getpid()}\n")
        wakeup, wakeup_writer = os.pipe()
        os.set_blocking(wakeup_writer, False)
        signal.set_wakeup_fd(wakeup_writer)  # every signal's number lands here too, whenever it comes
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            self._say(f"supervising {', '.join(self._commands)} (pid {os.getpid()})")
            threads = [threading.Thread(target=self._supervise, args=(name,), name=name) for name in self._commands]
            for thread in threads:
                thread.start()
            stop_signal = signal.Signals(os.read(wakeup, 1)[0]).name
            self._stopping.set()
            self._say(f"{stop_signal}: SIGTERM to every process group, SIGKILL after {STOP_GRACE_S:.0f}s")
            self._signal_all(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if left := [thread.name for thread in threads if thread.is_alive()]:
                self._say(f"still running after {STOP_GRACE_S:.0f}s: {', '.join(left)}; SIGKILL")
                self._signal_all(signal.SIGKILL)
            for thread in [*threads, *self._pumps]:
                thread.join(timeout=2.0)  # a pump ends at EOF, once it has copied the last line
            self._say("stopped")
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wakeup)
            os.close(wakeup_writer)
            pid_file(self._local_dir).unlink(missing_ok=True)
            if server is not None:
                server.shutdown()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, maybe while it holds a lock, so it takes none.
        self._signals += 1
        if self._signals > 1:  # a second Ctrl-C: no more patience
            self._signal_all(signal.SIGKILL)

    def _signal_all(self, signum: int) -> None:
        for popen in list(self._popens.values()):
            if popen is not None and popen.returncode is None:
                _signal_group(popen.pid, signum)

    def _supervise(self, name: str) -> None:
        policy = self._policy
        exits: deque[float] = deque()
        delay_ms = policy.backoff_base_ms
        reason: str | None = None
        while not self._stopping.is_set():
            if reason is not None:
                self._restarts.labels(name, reason).inc()
                self._update(name, restarts=self._status[name].restarts + 1)
            started = time.monotonic()
            pid, code = self._run_once(name)
            uptime = time.monotonic() - started
            last_exit = _exit_name(code)
            exited = {"pid": None, "last_exit": last_exit, "last_exit_at": time.time()}
            by_code = isinstance(last_exit, int)
            reason = f"exit_{last_exit}" if by_code else f"signal_{last_exit}"
            ended = f"{name} (pid {pid}): {'exit code' if by_code else 'signal'} {last_exit} after {uptime:.1f}s up"
            if self._stopping.is_set():
                self._say(f"stopped {ended}")
                self._update(name, state="stopped", **exited)
                return
            if uptime >= policy.stable_after_s:
                delay_ms = policy.backoff_base_ms
            exits.append(time.monotonic())
            while exits[0] < exits[-1] - policy.crash_loop_window_s:
                exits.popleft()
            if len(exits) >= policy.crash_loop_exits:
                self._say(f"EXITED {ended}")
                self._say(f"FAILED {name}: {len(exits)} exits within {policy.crash_loop_window_s}s, not restarted")
                self._failed.labels(name).set(1)
                self._update(name, state="failed", **exited)
                return
            self._say(f"EXITED {ended}; restarting in {delay_ms / 1000:.1f}s")
            # One update with the exit: a reader never sees "running" with this exit's time.
            self._update(name, state="backoff", **exited)
            self._stopping.wait(delay_ms / 1000)
            delay_ms = min(delay_ms * 2, policy.backoff_cap_ms)
        self._update(name, state="stopped")

    def _run_once(self, name: str) -> tuple[int | None, int]:
        """Run the process until it exits: its pid (None if it could not start) and its return code."""
        try:
            popen = subprocess.Popen(
                self._commands[name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        except OSError as error:
            self._say(f"{name} could not start: {error}")
            return None, 127
        self._popens[name] = popen
        self._update(name, pid=popen.pid, state="running", started_at=time.time())
        self._up.labels(name).set(1)
        if self._stopping.is_set():  # the stop began while this one was starting
            _signal_group(popen.pid, signal.SIGTERM)
        pump = threading.Thread(target=self._pump, args=(name, popen.stdout), daemon=True)
        pump.start()
        with self._lock:
            self._pumps = [*(thread for thread in self._pumps if thread.is_alive()), pump]
        code = popen.wait()
        # Whatever it left behind in its group would hold its ports and files against the restart.
        _signal_group(popen.pid, signal.SIGKILL)
        self._popens[name] = None
        self._up.labels(name).set(0)
        return popen.pid, code

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        # Always reading, so a chatty process never blocks on a full pipe.
        with stream, open(self._local_dir / "logs" / f"{name}.log", "ab") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self._lock:
                    self._print(name, line.decode(errors="replace").rstrip("\r\n"))

    def _say(self, text: str) -> None:
        with self._lock, open(self._local_dir / "logs" / "supervisor.log", "a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {text}\n")
            self._print("supervisor", text)

    def _print(self, name: str, text: str) -> None:
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {text}\n")
        sys.stdout.flush()

    def _update(self, name: str, **changes: Any) -> None:
        """Change one process's status and rewrite state.json, atomically: readers see the old or the new file."""
        with self._lock:
            for key, value in changes.items():
                setattr(self._status[name], key, value)
            state = {
                "supervisor_pid": os.getpid(),
                "processes": {process: asdict(status) for process, status in self._status.items()},
            }
            temporary = self._local_dir / "supervisor" / "state.json.tmp"
            temporary.write_text(json.dumps(state, indent=2) + "\n")
            os.replace(temporary, temporary.with_name("state.json"))


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _exit_name(code: int) -> int | str:
    """A return code as the exit code or, for a process killed by a signal, the signal's name."""
    with contextlib.suppress(ValueError):  # a real-time signal has no name
        return code if code >= 0 else signal.Signals(-code).name
    return f"SIG{-code}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--procfile", type=Path, default=Path("Procfile"))
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        try:
            commands = parse_procfile(args.procfile.read_text())
        except OSError as error:
            raise StackError(f"cannot read the Procfile: {error}") from None
        # The project's virtualenv first, as if activated; unbuffered, so Python output arrives line by line.
        env = {"PYTHONUNBUFFERED": "1", **os.environ}
        env["PATH"] = os.pathsep.join([str(PROJECT_ROOT / ".venv" / "bin"), os.environ.get("PATH", os.defpath)])
        Supervisor(commands, settings.supervisor, settings.local_dir, env).run()
    except JobstreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
