"""The one backoff every retry uses: exponential from a base to a cap, with equal jitter.

Half of each step is fixed and half random, so a retry never comes sooner than half its step (a dependency that
just failed gets room) and retries that collided spread out instead of colliding again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float
    cap_s: float

    def step_s(self, attempt: int) -> float:
        """The un-jittered wait after the `attempt`-th failure in a row (1-based): base, 2 x base ... up to cap."""
        return min(self.cap_s, self.base_s * 2.0 ** (max(attempt, 1) - 1))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after the `attempt`-th failure in a row: between half the step and the whole step."""
        step = self.step_s(attempt)
        jitter = rng.uniform(0, step / 2) if rng is not None else random.uniform(0, step / 2)
        return step / 2 + jitter
