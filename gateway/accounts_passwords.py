"""Password hashing with argon2id, off the event loop and bounded: each hash costs tens of ms and 64 MiB of memory.

Logins for unknown emails still verify against a dummy hash, so response time does not tell which emails exist.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class PasswordHashing:
    def __init__(self, hasher: PasswordHasher, *, max_concurrency: int) -> None:
        """`hasher` defaults to argon2-cffi's RFC 9106 low-memory profile; tests pass cheaper parameters."""
        self._hasher = hasher
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="argon2")
        self._dummy_hash = hasher.hash("not a password anyone has: it only spends the time a real check does")

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash (unknown user) spends the same time and says False."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            matched = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None
