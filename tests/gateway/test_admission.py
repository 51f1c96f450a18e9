"""Admission control in isolation: pure asyncio, no services."""

import asyncio
import random

import pytest

from gateway.middleware.admission import Admission

pytestmark = [pytest.mark.anyio, pytest.mark.unit]


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


async def test_one_client_holds_at_most_its_share_while_other_clients_go_past_its_waiters():
    admission = Admission(max_inflight=4, max_queued=10, max_wait_s=5, max_per_client=2)
    assert [await admission.enter("10.0.0.1") for _ in range(2)] == [None, None]
    third = asyncio.create_task(admission.enter("10.0.0.1"))
    await asyncio.sleep(0.01)

    # Two slots are free and the queue holds 10.0.0.1's third request, which may not take one: others may.
    assert await asyncio.wait_for(admission.enter("10.0.0.2"), 0.1) is None
    assert await asyncio.wait_for(admission.enter("10.0.0.3"), 0.1) is None

    assert not third.done()
    assert (admission.inflight, admission.queued, admission.held("10.0.0.1")) == (4, 1, 2)
    admission.leave("10.0.0.2")  # a slot frees, but 10.0.0.1 is still at its cap
    await asyncio.sleep(0.01)
    assert not third.done() and admission.inflight == 3
    admission.leave("10.0.0.1")
    assert await third is None
    assert (admission.inflight, admission.queued, admission.held("10.0.0.1")) == (3, 0, 2)


async def test_a_freed_slot_goes_to_the_first_waiter_whose_client_is_under_its_cap():
    admission = Admission(max_inflight=2, max_queued=10, max_wait_s=5, max_per_client=1)
    assert await admission.enter("a") is None
    assert await admission.enter("b") is None
    served = []

    async def request(client, name):
        assert await admission.enter(client) is None
        served.append(name)

    waiters = []
    for client, name in [("a", "a2"), ("a", "a3"), ("b", "b2"), ("c", "c1")]:
        waiters.append(asyncio.create_task(request(client, name)))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)

    admission.leave("b")  # a2 and a3 may not take it (a is at its cap); b2 arrived before c1
    await asyncio.sleep(0.01)
    admission.leave("a")  # a2 arrived before c1
    await asyncio.sleep(0.01)
    admission.leave("b")  # a3 may not (a2 holds a's slot): c1
    await asyncio.sleep(0.01)
    admission.leave("a")  # a3, at last
    await asyncio.gather(*waiters)

    assert served == ["b2", "a2", "c1", "a3"]
    assert (admission.inflight, admission.queued, admission.held("a")) == (2, 0, 1)


async def test_a_cancelled_or_timed_out_waiter_of_a_capped_client_leaks_nothing():
    admission = Admission(max_inflight=2, max_queued=10, max_wait_s=0.05, max_per_client=1)
    assert await admission.enter("a") is None
    assert await admission.enter("a") == "queue_timeout"  # waited behind its own cap, with a slot free
    admission.max_wait_s = 5
    cancelled = asyncio.create_task(admission.enter("a"))
    handed = asyncio.create_task(admission.enter("a"))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    admission.leave("a")  # handed to `handed`, which is cancelled before it runs (a client hanging up)
    handed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handed

    assert (admission.inflight, admission.queued, admission.held("a")) == (0, 0, 0)
    assert [await admission.enter("a"), await admission.enter("b")] == [None, None]


async def test_under_random_load_no_client_exceeds_its_cap_and_every_slot_comes_back():
    rng = random.Random(9)
    admission = Admission(max_inflight=6, max_queued=40, max_wait_s=0.05, max_per_client=2)
    outcomes = []

    async def request(client):
        refused = await admission.enter(client)
        outcomes.append(refused)
        if refused is None:
            assert admission.held(client) <= 2 and admission.inflight <= 6
            try:
                await asyncio.sleep(rng.random() * 0.04)
            finally:
                admission.leave(client)

    tasks = []
    for _ in range(400):
        tasks.append(asyncio.create_task(request(rng.choice("abcde"))))
        if rng.random() < 0.2:
            rng.choice(tasks).cancel()
        await asyncio.sleep(rng.random() * 0.001)
    await asyncio.gather(*tasks, return_exceptions=True)

    assert (admission.inflight, admission.queued) == (0, 0)
    assert all(admission.held(c) == 0 for c in "abcde")
    assert outcomes.count(None) > 100 and "queue_timeout" in outcomes
