"""The real gateway process (`python -m gateway`) on free ports, for tests that need real sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobstream.settings import PROJECT_ROOT
from stack.processes import free_port


@dataclass(frozen=True)
class GatewayProcess:
    url: str
    port: int
    metrics_port: int


@contextlib.contextmanager
def gateway_process(tmp_path: Path, *, env: dict[str, str] | None = None, **settings: str) -> Iterator[GatewayProcess]:
    """`python -m gateway` on free ports (API and metrics) with JOBSTREAM_GATEWAY_<NAME> `settings` and any other
    variables in `env`; stopped after, and its log must hold no traceback."""
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "JOBSTREAM_GATEWAY_PORT": str(port),
        "JOBSTREAM_GATEWAY_METRICS_PORT": str(metrics_port),
        **(env or {}),
        **{f"JOBSTREAM_GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the gateway did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield GatewayProcess(f"http://127.0.0.1:{port}", port, metrics_port)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    log = log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
