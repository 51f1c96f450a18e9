"""Admission control in isolation: pure asyncio, no services."""

import asyncio

import pytest

from gateway.inflight import Admission

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_slots_go_to_waiters_in_arrival_order():
    admission = Admission(max_inflight=1, max_queued=10, max_wait_s=5)
    assert await admission.enter() is None
    order = []

    async def request(name):
        assert await admission.enter() is None
        order.append(name)
        admission.leave()

    waiters = [asyncio.create_task(request(n)) for n in "abcd"]
    await asyncio.sleep(0.01)
    assert (admission.inflight, admission.queued, order) == (1, 4, [])

    admission.leave()
    await asyncio.gather(*waiters)

    assert order == list("abcd")
    assert (admission.inflight, admission.queued) == (0, 0)


async def test_a_newcomer_does_not_overtake_the_queue():
    admission = Admission(max_inflight=1, max_queued=10, max_wait_s=5)
    assert await admission.enter() is None
    waiting = asyncio.create_task(admission.enter())
    await asyncio.sleep(0.01)

    admission.leave()  # hands the slot to the waiter, whose task has not run yet
    newcomer = asyncio.create_task(admission.enter())
    await asyncio.sleep(0.01)

    assert waiting.done() and await waiting is None
    assert not newcomer.done()
    admission.leave()
    assert await newcomer is None
    assert admission.inflight == 1


async def test_past_max_queued_a_request_is_refused_at_once():
    admission = Admission(max_inflight=1, max_queued=2, max_wait_s=5)
    assert await admission.enter() is None
    queued = [asyncio.create_task(admission.enter()) for _ in range(2)]
    await asyncio.sleep(0.01)

    assert await admission.enter() == "queue_full"

    for _ in range(3):
        admission.leave()
    assert await asyncio.gather(*queued) == [None, None]


async def test_a_waiter_past_max_wait_is_refused_and_leaves_the_queue():
    admission = Admission(max_inflight=1, max_queued=10, max_wait_s=0.05)
    assert await admission.enter() is None

    assert await admission.enter() == "queue_timeout"

    assert (admission.inflight, admission.queued) == (1, 0)
    admission.leave()
    assert admission.inflight == 0


async def test_a_cancelled_waiter_leaks_no_slot_even_when_handed_one():
    admission = Admission(max_inflight=1, max_queued=10, max_wait_s=5)
    assert await admission.enter() is None
    waiter = asyncio.create_task(admission.enter())
    await asyncio.sleep(0.01)

    admission.leave()  # the slot is handed to `waiter`...
    waiter.cancel()  # ...which is cancelled before it runs (a client hanging up)
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert (admission.inflight, admission.queued) == (0, 0)
    assert await admission.enter() is None
