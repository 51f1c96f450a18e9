"""Admission control: a few requests are served at once, a bounded queue waits a bounded time, the rest get 503.

Every admitted request shares one event loop, so each extra one stretches every other request's awaits (Redis,
Kafka) by its CPU time. Past a few dozen, those waits outgrow the dependencies' own timeouts and healthy
dependencies start to look down. So `max_inflight` stays small, and a burst waits in a FIFO queue, costing only a
parked coroutine, for at most `max_wait_s`; past `max_queued` waiting or that wait, the client gets 503 with
Retry-After at once.

No client address holds more than `max_per_client` of the slots: its further requests wait in the queue while other
addresses' requests go past them, so one busy (or hostile) client cannot starve the rest. Among the waiters that may
take a slot, arrival order holds.

Requests `exempt` says so of (probes, so an overloaded gateway still says how it is doing; status long-polls, which
would hold a slot while they only wait and are bounded on their own) are never queued nor refused.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http.errors import error_response

RefusalHook = Callable[[str], None]


@dataclass(order=True)
class _Waiter:
    seq: int
    client: str = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)
    queued: bool = field(default=True, compare=False)


class Admission:
    """`max_inflight` slots handed out in arrival order to at most `max_queued` waiters, each waiting `max_wait_s`;
    one client holds at most `max_per_client` slots (default: all of them)."""

    def __init__(
        self, max_inflight: int, max_queued: int, max_wait_s: float, *, max_per_client: int | None = None
    ) -> None:
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self.max_per_client = max_inflight if max_per_client is None else max_per_client
        self.inflight = 0
        self._queued = 0
        self._held: dict[str, int] = {}
        # Each client's waiters in arrival order, and a heap of the clients' first waiters: the next slot goes to the
        # earliest first waiter whose client is under its cap. Heap entries go stale (that waiter left or was
        # served) and are skipped; a client at its cap drops out of the heap until one of its slots frees.
        self._queues: dict[str, deque[_Waiter]] = {}
        self._heads: list[_Waiter] = []
        self._arrivals = itertools.count()

    @property
    def queued(self) -> int:
        return self._queued

    def held(self, client: str) -> int:
        """Slots `client` holds now."""
        return self._held.get(client, 0)

    async def enter(self, client: str = "") -> str | None:
        """Take a slot for `client`: None once taken, else why not ("queue_full" or "queue_timeout")."""
        # One event loop and no await between check and update: no lock needed. A free slot means no waiter could
        # take it (each is at its client's cap), so taking it overtakes nobody.
        if self.inflight < self.max_inflight and self.held(client) < self.max_per_client:
            self._take(client)
            return None
        if self._queued >= self.max_queued:
            return "queue_full"
        waiter = _Waiter(next(self._arrivals), client, asyncio.get_running_loop().create_future())
        queue = self._queues.setdefault(client, deque())
        queue.append(waiter)
        self._queued += 1
        if len(queue) == 1:
            heapq.heappush(self._heads, waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter.future
        except TimeoutError:
            self._abandon(waiter)
            return "queue_timeout"
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        return None

    def leave(self, client: str = "") -> None:
        """Give back `client`'s slot: to the longest-waiting request that may take it, or free it."""
        self.inflight -= 1
        held = self._held[client] - 1
        if held:
            self._held[client] = held
        else:
            del self._held[client]
        if held == self.max_per_client - 1 and client in self._queues:
            heapq.heappush(self._heads, self._queues[client][0])  # back under its cap: its first waiter competes again
        self._hand_over()

    def _take(self, client: str) -> None:
        self.inflight += 1
        self._held[client] = self._held.get(client, 0) + 1

    def _hand_over(self) -> None:
        while self.inflight < self.max_inflight and self._heads:
            head = heapq.heappop(self._heads)
            queue = self._queues.get(head.client)
            if not queue or queue[0] is not head:
                continue  # stale: served or gone
            if head.future.done():
                # Cancelled (timed out, client gone) but its task has not run yet to leave the queue: drop it now,
                # which lets the client's next waiter compete, and go on.
                self._dequeue(head)
                continue
            if self.held(head.client) >= self.max_per_client:
                continue  # parked until `leave` frees one of its client's slots
            self._dequeue(head)
            self._take(head.client)
            head.future.set_result(None)

    def _dequeue(self, waiter: _Waiter) -> None:
        queue = self._queues[waiter.client]
        was_first = queue[0] is waiter
        queue.remove(waiter)
        waiter.queued = False
        self._queued -= 1
        if not queue:
            del self._queues[waiter.client]
        elif was_first and self.held(waiter.client) < self.max_per_client:
            heapq.heappush(self._heads, queue[0])

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled():
            self.leave(waiter.client)  # a slot was handed over just as the wait ended: pass it on rather than leak it
        elif waiter.queued:
            self._dequeue(waiter)


class InflightLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        admission: Admission,
        retry_after_s: int,
        exempt: Callable[[Scope], bool] = lambda scope: False,
        on_refuse: RefusalHook | None = None,
    ) -> None:
        self.app = app
        self.admission = admission
        self.retry_after_s = retry_after_s
        self.exempt = exempt
        self.on_refuse = on_refuse or (lambda reason: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        admission = self.admission
        client = scope.get("client")
        address = client[0] if client else ""
        refused = await admission.enter(address)
        if refused is not None:
            self.on_refuse(refused)
            response = error_response(
                503,
                "overloaded",
                f"the gateway is serving its maximum of {admission.max_inflight} requests "
                f"with {admission.max_queued} waiting; retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            admission.leave(address)
