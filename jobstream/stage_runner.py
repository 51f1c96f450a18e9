"""Run a Quix Streams stage until it is told to stop, recovering from transient failures the way Kafka Streams does.

A stage's Application stops on what no message caused: its transactional producer fenced after a pause longer
than the transaction timeout, a commit refused because the group moved on, a broker or Redis gone for longer
than a client's timeout. For those (`FailureKind.TRANSIENT`) the runner lets the Application close (its state
stores, consumer and producer), waits a jittered backoff and builds a new one: a new producer, a new member of
the consumer group, resuming from the committed offsets and the state's changelog. Under exactly-once nothing
of the failed transaction is visible, so no decision is lost or doubled. Any other exception ends the process,
for the supervisor to restart and, if it keeps failing, to mark failed.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from quixstreams import Application

from jobstream.backoff import Backoff
from jobstream.failures import FailureKind, classify, describe
from jobstream.watchdog import StallWatchdog

logger = logging.getLogger(__name__)

RecoveryHook = Callable[[BaseException], None]


_REBUILD_BACKOFF = Backoff(base_s=1.0, cap_s=30.0)


@dataclass(frozen=True)
class RecoveryPolicy:
    """Backoff between rebuilds (1 s doubling to 30 s), counted from 1 again after a run of `stable_s`."""

    backoff: Backoff = _REBUILD_BACKOFF
    stable_s: float = 60.0


def run_stage(
    name: str,
    build: Callable[[], Application],
    *,
    policy: RecoveryPolicy | None = None,
    on_recovery: RecoveryHook | None = None,
    watchdog: StallWatchdog | None = None,
) -> None:
    """Build and run the stage's Application; rebuild it after each transient failure; return on SIGTERM/SIGINT.

    With a `watchdog`, a run whose loop stops polling ends the process (`jobstream.watchdog`).
    """
    policy = policy or RecoveryPolicy()
    rng = random.Random()
    stop = threading.Event()
    failures = 0
    while not stop.is_set():
        _stop_on_signals(stop)  # Quix installs its own handlers while it runs, and leaves them behind after
        started = time.monotonic()
        try:
            app = build()
            if stop.is_set():
                return
            with watchdog.watching() if watchdog is not None else contextlib.nullcontext():
                app.run()
            return  # run() only returns once a signal asked it to stop
        except Exception as error:
            if classify(error) is not FailureKind.TRANSIENT:
                raise
            failures = 1 if time.monotonic() - started >= policy.stable_s else failures + 1
            delay_s = policy.backoff.delay_s(failures, rng)
            logger.error(
                "stage %s stopped on a transient failure (%s); rebuilding it in %.1f s (failure %d in a row)",
                name,
                describe(error, 500),
                delay_s,
                failures,
            )
            if on_recovery is not None:
                on_recovery(error)
        _stop_on_signals(stop)
        stop.wait(delay_s)


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
