"""Password hashing's bound on queued work, in isolation: argon2 with cheap parameters, no services."""

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from gateway.accounts.passwords import PasswordHashing
from gateway.http.errors import Unavailable

pytestmark = pytest.mark.anyio


class GatedHasher(PasswordHasher):
    """Cheap argon2 whose hashes and checks wait for `gate` once it is closed, so work piles up on demand."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.gate = threading.Event()
        self.gate.set()

    def hash(self, password, *, salt=None):
        self.gate.wait(10)
        return super().hash(password, salt=salt)

    def verify(self, hash, password):
        self.gate.wait(10)
        return super().verify(hash, password)


@pytest.fixture
def gated():
    hasher = GatedHasher()
    passwords = PasswordHashing(hasher, max_concurrency=1, max_queued=2, retry_after_s=3)
    hasher.gate.clear()
    yield hasher, passwords
    hasher.gate.set()
    passwords.close()


async def _settle(passwords, outstanding):
    for _ in range(100):
        if passwords.outstanding == outstanding:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{passwords.outstanding} outstanding, expected {outstanding}")


async def test_past_the_queued_bound_hashing_answers_503_overloaded_at_once(gated):
    hasher, passwords = gated
    accepted = [asyncio.create_task(passwords.hash(f"password {i}")) for i in range(3)]  # 1 running + 2 queued
    await asyncio.sleep(0.05)

    with pytest.raises(Unavailable) as refused:
        await passwords.verify(None, "one too many")

    assert (refused.value.status, refused.value.code) == (503, "overloaded")
    assert refused.value.headers == {"Retry-After": "3"}
    assert passwords.outstanding == 3
    hasher.gate.set()
    hashes = await asyncio.gather(*accepted)
    assert all(h.startswith("$argon2id$") for h in hashes)
    await _settle(passwords, 0)
    assert await passwords.verify(hashes[0], "password 0") is True


async def test_a_caller_that_gives_up_frees_its_place_once_its_work_is_done_or_dropped(gated):
    hasher, passwords = gated
    running = asyncio.create_task(passwords.hash("running"))
    queued = [asyncio.create_task(passwords.hash(f"queued {i}")) for i in range(2)]
    await asyncio.sleep(0.05)

    for task in (running, *queued):
        task.cancel()
    await asyncio.gather(running, *queued, return_exceptions=True)

    assert passwords.outstanding == 1  # the queued ones are dropped; the running hash still holds its thread
    hasher.gate.set()
    await _settle(passwords, 0)
    assert (await passwords.hash("next")).startswith("$argon2id$")
