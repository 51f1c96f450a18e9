"""A small circuit breaker: after N consecutive failures, calls fail fast for a while instead of piling up.

Closed -> (N failures) -> open: every call fails at once with `CircuitOpen` -> (reset time) -> half-open: one
trial call; its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from jobstream.errors import DependencyUnavailable

T = TypeVar("T")


class CircuitOpen(DependencyUnavailable):
    """The breaker refused the call, or the call failed in a way it counts: `name` cannot serve now."""

    def __init__(self, name: str, retry_after_s: int) -> None:
        super().__init__(name, f"{name} is unavailable; retry shortly", retry_after_s)


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failures: int,
        reset_s: float,
        errors: tuple[type[BaseException], ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failures
        self._reset_s = reset_s
        self._errors = errors
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._reset_s else "open"

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation`; a failure of the configured kinds counts, and past the threshold raises CircuitOpen."""
        state = self.state
        if state == "open" or (state == "half-open" and self._trial_running):
            raise CircuitOpen(self.name, self._retry_after_s())
        self._trial_running = state == "half-open"
        try:
            result = await operation()
        except self._errors as error:
            self._record_failure()
            raise CircuitOpen(self.name, self._retry_after_s()) from error
        finally:
            self._trial_running = False
        self._failures = 0
        self._opened_at = None
        return result

    def _record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold or self._opened_at is not None:
            self._opened_at = self._clock()

    def _retry_after_s(self) -> int:
        if self._opened_at is None:
            return 1
        return max(1, round(self._reset_s - (self._clock() - self._opened_at)))
