"""Ends a stage process whose main loop has stopped turning, so that its supervisor starts a fresh one.

librdkafka can block a transactional commit forever once the group coordinator's broker is gone for good
(confluentinc/librdkafka#5511: a decommissioned broker stays cached as the coordinator and is never looked up
again), and Quix Streams commits a checkpoint's transaction without a timeout. The stage then decides nothing,
raises nothing the stage runner could rebuild from and answers no signal: it is blocked inside C.

The loop's heartbeat is librdkafka's statistics callback, which the consumer's poll serves every
`STATISTICS_INTERVAL_MS` even when idle. While the stage runs, once that heartbeat is `stall_s` old, the watchdog
logs why and exits the process with EXIT_STALLED (os._exit: the blocked main thread would never unwind). Exactly
once still holds: the coordinator aborts the open transaction (transaction.timeout.ms), and the new process
resumes from the committed offsets and changelogs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

EXIT_STALLED = 70
logger = logging.getLogger(__name__)


class StallWatchdog:
    """Watches `last_poll` (a time.monotonic() value) while `watching()`; calls `exit` once it is `stall_s` old."""

    def __init__(
        self,
        stage: str,
        last_poll: Callable[[], float],
        stall_s: float,
        *,
        check_every_s: float = 1.0,
        exit: Callable[[int], None] = os._exit,
    ) -> None:
        self._stage = stage
        self._last_poll = last_poll
        self._stall_s = stall_s
        self._check_every_s = check_every_s
        self._exit = exit
        self._armed_at: float | None = None
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Watch while the stage's Application runs (not while it is built, nor during a rebuild's backoff)."""
        self._armed_at = time.monotonic()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name=f"{self._stage}-watchdog", daemon=True)
            self._thread.start()
        try:
            yield
        finally:
            self._armed_at = None

    def _watch(self) -> None:
        while True:
            time.sleep(self._check_every_s)
            armed_at = self._armed_at
            if armed_at is None:
                continue
            quiet_s = time.monotonic() - max(armed_at, self._last_poll())
            if quiet_s > self._stall_s:
                logger.critical(
                    "stage %s has not polled Kafka for %.0f s (a client call blocked without a timeout); "
                    "exiting with %d so that a fresh process takes over",
                    self._stage,
                    quiet_s,
                    EXIT_STALLED,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                sys.stderr.flush()
                self._exit(EXIT_STALLED)
                return
