"""Start, find and stop the stack's background processes through pid files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stack.errors import PortTakenError, StackError


def is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for servers that must be told their port up front."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_holder(port: int) -> str:
    """Describe the process listening on a TCP port, as far as /proc lets us see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "0A":  # 0A is LISTEN
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                # An fd may close between the listing and the readlink: skip it, not the whole process.
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name} ({command.strip()[:120]})"
            except OSError:
                continue
    return "a process this user cannot inspect"


def ensure_port_free(port: int, service: str) -> None:
    if is_listening("127.0.0.1", port):
        raise PortTakenError(port, service, port_holder(port))


def read_pid(pid_file: Path) -> int | None:
    """The pid in the file if that process is still alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    if _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def spawn(command: Sequence[str], pid_file: Path, log_file: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a detached process (own session, so Ctrl-C on `up` does not reach it) and record its pid.

    A caller that outlives the process should keep the handle and `wait()` on it after `stop`.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process


def stop(pid_files: Sequence[Path], grace_s: float = 30.0) -> list[Path]:
    """SIGTERM the recorded processes together, SIGKILL those left after the grace period.

    Together, because a KRaft node's controlled shutdown needs a quorum of the others still up.
    Returns the pid files whose process was running.
    """
    running = {pid_file: pid for pid_file in pid_files if (pid := read_pid(pid_file)) is not None}
    for pid in running.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(read_pid(pid_file) for pid_file in running):
        time.sleep(0.1)
    for pid_file, pid in running.items():
        if read_pid(pid_file) is not None:
            os.kill(pid, signal.SIGKILL)
            while read_pid(pid_file) is not None:
                time.sleep(0.05)
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)
    return list(running)


def wait_until(ready: Callable[[], bool], what: str, timeout_s: float, log_file: Path | None = None) -> None:
    """Poll `ready` until it returns True; on timeout, raise with the tail of the log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.25)
    tail = ""
    if log_file is not None and log_file.exists():
        tail = "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
    raise StackError(f"{what} was not ready after {timeout_s:.0f}s{tail}")
