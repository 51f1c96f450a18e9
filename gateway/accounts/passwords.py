"""Password hashing with argon2id, off the event loop and bounded: each hash costs tens of ms and 64 MiB of memory.

Hashes run on `max_concurrency` threads; at most `max_queued` more wait for one. Past that, registration and login
get 503 overloaded at once: an unbounded queue would only make every caller wait longer (and hold its request's
admission slot), while the work queued behind a burst could never be done in time anyway.

Logins for unknown emails still verify against a dummy hash, so response time does not tell which emails exist.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.http.errors import Unavailable

T = TypeVar("T")


class PasswordHashing:
    def __init__(
        self, hasher: PasswordHasher, *, max_concurrency: int, max_queued: int = 64, retry_after_s: int = 1
    ) -> None:
        """`hasher` defaults to argon2-cffi's RFC 9106 low-memory profile; tests pass cheaper parameters."""
        self._hasher = hasher
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="argon2")
        self._max_outstanding = max_concurrency + max_queued
        self._retry_after_s = retry_after_s
        # Hashes submitted and not finished (running or waiting); decremented from the worker threads.
        self._outstanding = 0
        self._lock = threading.Lock()
        self._dummy_hash = hasher.hash("not a password anyone has: it only spends the time a real check does")

    @property
    def outstanding(self) -> int:
        """Hashes running or waiting for a thread now."""
        return self._outstanding

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def hash(self, password: str) -> str:
        return await self._submit(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash (unknown user) spends the same time and says False."""
        return await self._submit(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            matched = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None

    def _submit(self, work: Callable[..., T], *args: object) -> asyncio.Future[T]:
        with self._lock:
            if self._outstanding >= self._max_outstanding:
                raise Unavailable(
                    "overloaded", "too many password checks are waiting; retry shortly", self._retry_after_s
                )
            self._outstanding += 1
        future = self._executor.submit(work, *args)
        # Counted down when the work ends, not when its caller stops waiting: a cancelled caller's running hash
        # still holds its thread until it finishes.
        future.add_done_callback(self._finished)
        return asyncio.wrap_future(future)

    def _finished(self, future: Future[object]) -> None:
        with self._lock:
            self._outstanding -= 1
