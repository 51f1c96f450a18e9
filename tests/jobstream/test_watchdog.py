"""A running stage that stops polling ends its process; one that polls, or is not running, does not."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from jobstream.stage_metrics import StageMetrics
from jobstream.watchdog import EXIT_STALLED, StallWatchdog

pytestmark = pytest.mark.unit


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_a_running_stage_that_stops_polling_exits_with_the_stalled_code():
    exits = Exits()
    stale = time.monotonic() - 60
    watchdog = StallWatchdog("test", lambda: stale, stall_s=0.3, check_every_s=0.02, exit=exits)
    started = time.monotonic()
    with watchdog.watching():
        assert exits.called.wait(3)
    assert exits.codes == [EXIT_STALLED]
    # Counted from when the run began, not from the stale beat before it.
    assert time.monotonic() - started >= 0.3


def test_a_stage_that_keeps_polling_is_left_alone():
    exits = Exits()
    watchdog = StallWatchdog("test", time.monotonic, stall_s=0.2, check_every_s=0.02, exit=exits)
    with watchdog.watching():
        assert not exits.called.wait(0.8)


def test_a_stage_between_runs_is_not_watched():
    exits = Exits()
    stale = time.monotonic() - 60
    watchdog = StallWatchdog("test", lambda: stale, stall_s=0.3, check_every_s=0.02, exit=exits)
    with watchdog.watching():
        pass  # the run ended (a rebuild's backoff follows)
    assert not exits.called.wait(0.8)


def test_the_consumers_statistics_callback_is_the_heartbeat():
    metrics = StageMetrics(CollectorRegistry(), "test")
    before = metrics.polled_at
    time.sleep(0.01)
    metrics.statistics("{}")
    assert metrics.polled_at > before
