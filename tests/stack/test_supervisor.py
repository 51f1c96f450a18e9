"""`python -m stack.supervisor` with real child processes: restarts with backoff, crash loops, stopping, logs."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobstream.settings import PROJECT_ROOT
from stack.processes import free_port

SLEEPER = "import time; print('up', flush=True); time.sleep(600)"
GRANDPARENT = (
    "import subprocess, time; child = subprocess.Popen(['sleep', '600']); "
    "print('grandchild', child.pid, flush=True); time.sleep(600)"
)
EXIT_3 = "import sys, time; print('exiting with 3', flush=True); time.sleep({uptime}); sys.exit(3)"


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited; only its parent has not reaped it


@dataclass
class Supervised:
    popen: subprocess.Popen[bytes]
    local_dir: Path
    metrics_port: int
    output: Path

    def state(self) -> dict[str, Any]:
        try:
            return json.loads((self.local_dir / "supervisor" / "state.json").read_text())["processes"]
        except FileNotFoundError:
            return {}

    def log(self, name: str) -> str:
        path = self.local_dir / "logs" / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def metric(self, sample: str, **labels: str) -> float | None:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for found in family.samples:
                if found.name == sample and found.labels == labels:
                    return found.value
        return None

    def wait_until(self, ready: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if result := ready():
                return result
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"{what}: not seen in {timeout_s}s\nstate: {self.state()}\n{self.output.read_text()}")

    def running_pid(self, name: str) -> int:
        return self.wait_until(
            lambda: self.state().get(name, {}).get("state") == "running" and self.state()[name]["pid"],
            f"{name} running",
        )


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    """Start the supervisor on a Procfile of {name: python code}, each run as `python -c CODE`."""
    started: list[Supervised] = []

    def start(programs: dict[str, str], **env: str) -> Supervised:
        procfile = tmp_path / "Procfile"
        procfile.write_text(
            "# a test Procfile\n"
            + "".join(f"{name}: python -c {shlex.quote(code)}\n" for name, code in programs.items())
        )
        local_dir, metrics_port, output = tmp_path / "local", free_port(), tmp_path / "supervisor.out"
        variables = {
            "JOBSTREAM_LOCAL_DIR": str(local_dir),
            "JOBSTREAM_SUPERVISOR_METRICS_PORT": str(metrics_port),
            "JOBSTREAM_SUPERVISOR_BACKOFF_BASE_MS": "100",
            "JOBSTREAM_SUPERVISOR_BACKOFF_CAP_MS": "200",
            "JOBSTREAM_SUPERVISOR_CRASH_LOOP_EXITS": "100",
            **env,
        }
        with open(output, "wb") as terminal:
            popen = subprocess.Popen(
                [sys.executable, "-m", "stack.supervisor", "--procfile", str(procfile)],
                cwd=PROJECT_ROOT,
                env={**os.environ, **variables},
                stdout=terminal,
                stderr=subprocess.STDOUT,
            )
        supervised = Supervised(popen, local_dir, metrics_port, output)
        started.append(supervised)
        supervised.wait_until(supervised.state, "the supervisor's first state.json")
        return supervised

    yield start
    for supervised in started:
        if supervised.popen.poll() is None:
            supervised.popen.send_signal(signal.SIGTERM)
        try:
            supervised.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            supervised.popen.kill()
            supervised.popen.wait()
        for process in supervised.state().values():  # never leave a child behind, whatever the test did
            if process["pid"] and alive(process["pid"]):
                os.killpg(process["pid"], signal.SIGKILL)


def test_an_exit_is_logged_and_restarted_with_backoff_while_the_sibling_keeps_running(supervise):
    supervised = supervise(
        {"crasher": EXIT_3.format(uptime=0.5), "sibling": SLEEPER},
        JOBSTREAM_SUPERVISOR_BACKOFF_BASE_MS="300",
        JOBSTREAM_SUPERVISOR_BACKOFF_CAP_MS="1200",
    )
    sibling_pid = supervised.running_pid("sibling")
    sibling_pids, gaps = set(), {}

    def restarted(times: int) -> bool:
        state = supervised.state()
        sibling_pids.add(state["sibling"]["pid"])
        crasher = state["crasher"]
        if crasher["state"] == "running" and crasher["restarts"]:  # the wait between its last exit and this start
            gaps[crasher["restarts"]] = crasher["started_at"] - crasher["last_exit_at"]
        return crasher["restarts"] >= times and crasher["state"] == "running"

    supervised.wait_until(lambda: restarted(2), "crasher restarted twice")
    counted = supervised.metric("jobstream_process_restarts_total", process="crasher", reason="exit_3")
    assert counted is not None and counted >= 2
    supervised.wait_until(lambda: restarted(4), "crasher restarted four times")
    assert supervised.metric("jobstream_process_restarts_total", process="crasher", reason="exit_3") > counted

    # Delays double from the base to the cap, and each restart really waited that long.
    exits = re.findall(
        r"EXITED crasher \(pid (\d+)\): exit code 3 after ([\d.]+)s up; restarting in ([\d.]+)s",
        (supervised.local_dir / "logs" / "supervisor.log").read_text(),
    )
    assert [delay for _, _, delay in exits[:4]] == ["0.3", "0.6", "1.2", "1.2"]
    assert len({pid for pid, _, _ in exits}) == len(exits) >= 4
    assert all(float(uptime) >= 0.4 for _, uptime, _ in exits)
    for restart, expected in {1: 0.3, 2: 0.6, 3: 1.2}.items():
        assert gaps[restart] >= expected - 0.05, gaps
    assert sibling_pids == {sibling_pid} and alive(sibling_pid)
    assert supervised.metric("jobstream_process_up", process="sibling") == 1
    assert supervised.state()["sibling"]["restarts"] == 0


def test_a_child_killed_by_sigkill_is_restarted_and_logged_by_signal_name(supervise):
    # The victim's grandchild holds the victim's output pipe: the exit must be seen anyway, and the grandchild,
    # left in the victim's process group, must not outlive it.
    supervised = supervise({"victim": GRANDPARENT})
    first_pid = supervised.running_pid("victim")
    grandchild = int(supervised.wait_until(lambda: re.search(r"grandchild (\d+)", supervised.log("victim")), "pid")[1])
    os.kill(first_pid, signal.SIGKILL)
    second_pid = supervised.wait_until(
        lambda: (pid := supervised.state()["victim"]["pid"]) not in (None, first_pid) and pid,
        "victim restarted",
    )
    state = supervised.state()["victim"]
    assert (state["last_exit"], state["restarts"]) == ("SIGKILL", 1)
    assert alive(second_pid) and not alive(first_pid)
    supervised.wait_until(lambda: not alive(grandchild), "the grandchild killed with its group", timeout_s=2)
    log = (supervised.local_dir / "logs" / "supervisor.log").read_text()
    assert f"EXITED victim (pid {first_pid}): signal SIGKILL" in log
    assert supervised.metric("jobstream_process_restarts_total", process="victim", reason="signal_SIGKILL") == 1


def test_a_crash_loop_marks_the_process_failed_and_the_sibling_keeps_running(supervise):
    supervised = supervise(
        {"crasher": EXIT_3.format(uptime=0), "sibling": SLEEPER},
        JOBSTREAM_SUPERVISOR_CRASH_LOOP_EXITS="5",
        JOBSTREAM_SUPERVISOR_CRASH_LOOP_WINDOW_S="120",
    )
    sibling_pid = supervised.running_pid("sibling")
    supervised.wait_until(lambda: supervised.state()["crasher"]["state"] == "failed", "crasher failed")
    time.sleep(1.0)  # five times the capped backoff: a restart would have happened by now

    crasher = supervised.state()["crasher"]
    assert (crasher["state"], crasher["pid"], crasher["restarts"], crasher["last_exit"]) == ("failed", None, 4, 3)
    log = (supervised.local_dir / "logs" / "supervisor.log").read_text()
    assert log.count("EXITED crasher") == 5
    assert "FAILED crasher: 5 exits within 120s" in log
    assert supervised.log("crasher").count("exiting with 3") == 5
    assert supervised.metric("jobstream_process_failed", process="crasher") == 1
    assert supervised.metric("jobstream_process_failed", process="sibling") == 0
    assert supervised.state()["sibling"]["pid"] == sibling_pid and alive(sibling_pid)
    assert supervised.popen.poll() is None


def test_sigterm_stops_every_child_and_its_group_then_exits_0(supervise):
    supervised = supervise(
        {"plain": SLEEPER, "parent": GRANDPARENT, "waiting": EXIT_3.format(uptime=0)},
        JOBSTREAM_SUPERVISOR_BACKOFF_BASE_MS="20000",
        JOBSTREAM_SUPERVISOR_BACKOFF_CAP_MS="20000",
    )
    pids = [supervised.running_pid("plain"), supervised.running_pid("parent")]
    pids.append(int(supervised.wait_until(lambda: re.search(r"grandchild (\d+)", supervised.log("parent")), "pid")[1]))
    supervised.wait_until(lambda: supervised.state()["waiting"]["state"] == "backoff", "waiting in its 20s backoff")
    assert all(alive(pid) for pid in pids)

    stopping = time.monotonic()
    supervised.popen.send_signal(signal.SIGTERM)
    assert supervised.popen.wait(timeout=10) == 0
    assert time.monotonic() - stopping < 5  # neither the grace period nor the pending backoff was waited out
    assert not any(alive(pid) for pid in pids)
    assert {name: process["state"] for name, process in supervised.state().items()} == dict.fromkeys(
        ["plain", "parent", "waiting"], "stopped"
    )
    assert supervised.state()["plain"]["last_exit"] == "SIGTERM"
    assert not (supervised.local_dir / "supervisor" / "supervisor.pid").exists()


STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ignoring SIGTERM', flush=True); "
    "time.sleep(600)"
)


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(supervise):
    supervised = supervise({"stubborn": STUBBORN, "plain": SLEEPER})
    stubborn, plain = supervised.running_pid("stubborn"), supervised.running_pid("plain")
    supervised.wait_until(lambda: "ignoring SIGTERM" in supervised.log("stubborn"), "stubborn ignoring SIGTERM")
    stopping = time.monotonic()
    supervised.popen.send_signal(signal.SIGTERM)
    supervised.wait_until(lambda: not alive(plain), "plain stopped by SIGTERM", timeout_s=5)
    assert alive(stubborn)
    assert supervised.popen.wait(timeout=25) == 0
    assert 14.5 <= time.monotonic() - stopping < 20
    assert not alive(stubborn)
    assert supervised.state()["stubborn"]["last_exit"] == "SIGKILL"
    assert "still running after 15s: stubborn; SIGKILL" in supervised.output.read_text()


def test_a_second_ctrl_c_kills_at_once(supervise):
    supervised = supervise({"stubborn": STUBBORN})
    stubborn = supervised.running_pid("stubborn")
    supervised.wait_until(lambda: "ignoring SIGTERM" in supervised.log("stubborn"), "stubborn ignoring SIGTERM")
    supervised.popen.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert supervised.popen.poll() is None and alive(stubborn)  # the first Ctrl-C waits for the grace period
    supervised.popen.send_signal(signal.SIGINT)
    assert supervised.popen.wait(timeout=5) == 0
    assert not alive(stubborn)
    assert supervised.state()["stubborn"]["last_exit"] == "SIGKILL"


def test_stack_down_stops_a_running_supervisor_first(supervise):
    supervised = supervise({"plain": SLEEPER})
    plain = supervised.running_pid("plain")
    down = subprocess.run(
        [sys.executable, "-m", "stack", "down"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "JOBSTREAM_LOCAL_DIR": str(supervised.local_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 0, down.stderr
    assert "supervisor stopped" in down.stdout
    assert supervised.popen.wait(timeout=5) == 0
    assert not alive(plain)


TALKER = (
    "import os, sys, time; print('to stdout'); print('to stderr', file=sys.stderr); "
    "print('stdin:', repr(sys.stdin.read())); print('own group:', os.getpgid(0) == os.getpid()); "
    "print('x' * 300_000); print('after the long line'); time.sleep(600)"
)


def test_each_childs_output_lands_in_its_own_log_file_and_on_the_terminal(supervise):
    supervised = supervise({"talker": TALKER, "quiet": "import time; print('only mine'); time.sleep(600)"})
    supervised.wait_until(lambda: "after the long line" in supervised.log("talker"), "the talker's last line")
    supervised.wait_until(lambda: supervised.log("quiet"), "the quiet one's line")

    # Unflushed prints arrive (children run unbuffered), stderr with stdout, and a line far longer than a pipe's
    # buffer goes through whole, so the child never blocked on its output.
    assert supervised.log("talker").splitlines() == [
        "to stdout",
        "to stderr",
        "stdin: ''",
        "own group: True",
        "x" * 300_000,
        "after the long line",
    ]
    assert supervised.log("quiet") == "only mine\n"
    terminal = supervised.output.read_text()
    assert re.search(r"^\d\d:\d\d:\d\d talker +\| to stderr$", terminal, re.MULTILINE)
    assert re.search(r"^\d\d:\d\d:\d\d quiet +\| only mine$", terminal, re.MULTILINE)
