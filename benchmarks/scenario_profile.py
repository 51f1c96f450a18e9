"""Where the gateway's event loop spends its time: `python -m gateway` under py-spy during the ceiling load.

py-spy samples the interpreter's stacks from outside the process (no instrumentation: the code runs at its own
speed, only paused for each sample) and writes every distinct stack with its count. The event-loop thread
(MainThread), where every request's Python work runs, is ranked: what each frame costs including what it calls,
and what runs at the top of the stack itself. Samples outside serving (imports, building the app, uvicorn's startup
and lifespan, shutdown) are dropped; py-spy leaves out idle samples (the loop waiting in epoll) by itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from benchmarks.baseline_apps import APPLY_PATH
from benchmarks.fixtures import APPLICATION_BODY, warm_profiles, write_job_ids, write_tokens
from benchmarks.report import Table
from benchmarks.scenario_gateway import UNLIMITED, gateway_env
from benchmarks.servers import command_process, python_command, wait_listening
from benchmarks.wrk import LoadSpec, run_wrk
from jobstream.settings import Settings
from stack.processes import free_port

_RATE_HZ = 250
_POLL_THREAD = "kafka-producer-poll"
# Ranked inclusively: the gateway's own steps and the libraries on the request path (matched on py-spy's short
# file names, which start at the package).
_INTERESTING = (
    "gateway/",
    "schemas/",
    "jwt/",
    "redis/",
    "h11/",
    "uvicorn/protocols/",
    "starlette/",
    "logging/",
    "confluent_kafka/",
    "json/",
)
# Frames that only exist outside serving: startup, the lifespan's startup and shutdown, uvicorn's shutdown.
_OUTSIDE_SERVING = ("Server.startup ", "Server.shutdown ", "LifespanOn.")
_IN_EVENT_LOOP = "BaseEventLoop._run_once "
# A frame that hands at least this share of its samples to one callee is a pass-through (the middleware chain):
# its callee's row carries the cost, so it is left out of the inclusive ranking.
_PASS_THROUGH = 0.9
_TOP = 15
_STOP_TIMEOUT_S = 60.0
_HEAD = re.compile(r"thread \(\d+\)(?:: (?P<name>.*))?")
_FRAME = re.compile(r"(?P<function>.*) \((?P<file>.+?)(?::\d+)?\)")
_SUMMARY = re.compile(r"Samples: (?P<samples>\d+) Errors: (?P<errors>\d+)")


@dataclass
class Profile:
    """py-spy's raw output folded by function + file: the event loop's samples while serving, and per thread."""

    kept: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    # Per frame, the most samples it shares with a single callee.
    handed_on: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)

    def passes_through(self, key: str) -> bool:
        return self.handed_on[key] >= _PASS_THROUGH * self.inclusive[key]


def run(settings: Settings, workdir: Path, quick: bool) -> Table:
    """Profile the gateway under the ceiling load and return the ranking."""
    duration_s, connections = (3, 8) if quick else (15, 64)
    tokens_file, jobs_file = workdir / "tokens.txt", workdir / "jobs.txt"
    warm_profiles(settings, write_tokens(settings, 50 if quick else 1_000, tokens_file))
    write_job_ids(100, jobs_file)
    port = free_port()
    limits = dict.fromkeys(("user_rate_per_min", "user_burst", "ip_rate_per_min", "ip_burst"), UNLIMITED)
    raw, log = workdir / "gateway.raw", workdir / "gateway.log"
    spec = LoadSpec(APPLY_PATH, APPLICATION_BODY, tokens_file, jobs_file, connections, 1, duration_s)
    record = [str(_py_spy()), "record", "--rate", str(_RATE_HZ), "--format", "raw", "--threads", "-o", str(raw)]
    with command_process([*record, "--", *python_command("gateway", [])], gateway_env(port, **limits), log) as spy:
        gateway_pid = _child(spy)
        try:
            wait_listening(spy, port, log)
            load = run_wrk(f"http://127.0.0.1:{port}", spec, workdir)
        finally:
            _interrupt(spy, gateway_pid)
    summary = _SUMMARY.search(log.read_text())
    if spy.returncode != 0 or summary is None:
        raise RuntimeError(f"py-spy exited with {spy.returncode}:\n{log.read_text()[-3000:]}")
    profile = read_raw(raw)
    ticks = _RATE_HZ * load.duration_s

    table = Table(
        f"Gateway profile (py-spy {_RATE_HZ} Hz, event-loop thread), wrk -t1 -c{connections} for {duration_s} s"
    )
    table.add("requests answered under the profiler", load.completed, "")
    table.add("py-spy samples written / errors", f"{int(summary['samples']):,} / {summary['errors']}", "")
    table.add(
        "event-loop samples kept (of all MainThread samples)", f"{profile.kept:,} of {profile.threads['MainThread']:,}"
    )
    table.add("event loop busy: kept samples / (rate x load time)", f"{100 * profile.kept / ticks:.0f}", "%")
    poll = profile.threads[_POLL_THREAD]
    table.add(
        f"{_POLL_THREAD} thread busy: its samples (whole run) / (rate x load time)",
        f"{100 * poll / ticks:.0f} ({poll:,} samples)",
        "%",
    )
    share = 100 / max(1, profile.kept)
    ranked = [key for key, _ in profile.inclusive.most_common() if key.split(" (")[-1].startswith(_INTERESTING)]
    for key in [key for key in ranked if not profile.passes_through(key)][:_TOP]:
        table.add(f"including callees: `{key}`", f"{profile.inclusive[key] * share:.1f}", "% of event-loop samples")
    for key, count in profile.own.most_common(_TOP):
        table.add(f"own time: `{key}`", f"{count * share:.1f}", "% of event-loop samples")
    table.commands.append(load.command)
    table.notes.append(
        f"py-spy record --rate {_RATE_HZ} --format raw --threads -- python -m gateway; percentages are shares of the "
        "event-loop samples kept: 'including callees' counts a frame once per stack it is in, 'own time' only when "
        "it is the innermost Python frame (time in C code, a syscall or a native library such as the Ed25519 "
        "verify counts for the Python frame that called it); frames are keyed by function and file, lines merged"
    )
    table.notes.append(
        "kept: MainThread samples inside the event loop, without imports, uvicorn's startup, the lifespan and "
        f"shutdown; idle samples are not taken. Frames handing >= {_PASS_THROUGH:.0%} of their samples to one callee "
        "(the ASGI middleware chain) are left out of 'including callees'. 'Busy' compares samples with the ticks "
        "of the load's wall time (first request to last answer): approximate, low if py-spy fell behind its rate, "
        "above 100 when serving work falls just outside that time (a short --quick load)"
    )
    return table


def _py_spy() -> Path:
    """The py-spy binary installed beside this interpreter (a dev dependency)."""
    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: install the dev dependencies (uv sync)")
    return binary


def read_raw(path: Path) -> Profile:
    """Fold py-spy's raw output (`thread (TID): NAME;frame (file:line);...;leaf (file:line) COUNT` per line)."""
    profile = Profile()
    shared: Counter[tuple[str, str]] = Counter()
    for line in path.read_text().splitlines():
        stack, count_text = line.rsplit(" ", 1)
        head, *frames = stack.split(";")
        count = int(count_text)
        thread = _HEAD.fullmatch(head)
        name = thread["name"] if thread and thread["name"] else head
        profile.threads[name] += count
        if name != "MainThread" or not _serving(frames):
            continue
        profile.kept += count
        keys = [_key(frame) for frame in frames]
        profile.inclusive.update(dict.fromkeys(set(keys), count))
        profile.own[keys[-1]] += count
        for caller, callee in set(pairwise(keys)):
            if caller != callee:
                shared[caller, callee] += count
    for (caller, _), count in shared.items():
        profile.handed_on[caller] = max(profile.handed_on[caller], count)
    return profile


def _serving(frames: list[str]) -> bool:
    return (
        any(frame.startswith(_IN_EVENT_LOOP) for frame in frames)
        and not any("importlib" in frame for frame in frames)
        and not any(frame.startswith(_OUTSIDE_SERVING) for frame in frames)
    )


def _key(frame: str) -> str:
    match = _FRAME.fullmatch(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def _child(process: subprocess.Popen) -> int:
    """The pid of the process that `process` started (py-spy runs the gateway as its child)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        children = _children(process.pid)
        if children:
            return children[0]
        time.sleep(0.05)
    raise RuntimeError(f"py-spy (pid {process.pid}) started no process")


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # After the command name: state, then the parent's pid.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def _interrupt(spy: subprocess.Popen, gateway_pid: int) -> None:
    """SIGINT to the gateway (uvicorn shuts down); py-spy then writes its file and exits. Kill the gateway if not."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(gateway_pid, signal.SIGINT)
    try:
        spy.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        if gateway_pid in _children(spy.pid):
            os.kill(gateway_pid, signal.SIGKILL)
        spy.wait(_STOP_TIMEOUT_S)
