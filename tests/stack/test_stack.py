import os
import socket
import subprocess
import sys

import pytest

from jobstream.settings import PROJECT_ROOT
from stack.errors import PortTakenError
from stack.processes import ensure_port_free


@pytest.fixture
def held_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _stack(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "stack", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_a_taken_port_names_the_port_and_its_holder(held_port):
    with pytest.raises(PortTakenError) as raised:
        ensure_port_free(held_port, "Redis")
    assert raised.value.port == held_port
    assert f"pid {os.getpid()}" in raised.value.holder
    assert f"port {held_port} is needed by Redis but is taken by pid {os.getpid()}" in str(raised.value)


def test_up_twice_is_harmless_and_reuses_the_running_stack(settings):
    pids_before = sorted(p.read_text() for p in settings.local_dir.glob("**/*.pid"))
    result = _stack("up")
    assert result.returncode == 0, result.stderr
    assert "(reused)" in result.stdout
    assert "(started)" not in result.stdout
    assert "migrations: 0 applied now" in result.stdout
    assert sorted(p.read_text() for p in settings.local_dir.glob("**/*.pid")) == pids_before


def test_up_with_a_taken_port_fails_with_a_clear_error(held_port, tmp_path):
    result = _stack(
        "up",
        env={"JOBSTREAM_REDIS_URL": f"redis://127.0.0.1:{held_port}/0", "JOBSTREAM_LOCAL_DIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert f"error: port {held_port} is needed by Redis but is taken by pid {os.getpid()}" in result.stderr
