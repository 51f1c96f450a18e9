"""Admission control: a few requests are served at once, a bounded queue waits a bounded time, the rest get 503.

Every admitted request shares one event loop, so each extra one stretches every other request's awaits (Redis,
Kafka) by its CPU time. Past a few dozen, those waits outgrow the dependencies' own timeouts and healthy
dependencies start to look down. So `max_inflight` stays small, and a burst waits in a FIFO queue, costing only a
parked coroutine, for at most `max_wait_s`; past `max_queued` waiting or that wait, the client gets 503 with
Retry-After at once.

Probes and metrics (`exempt` paths) are never queued nor refused, so an overloaded gateway still says how it is doing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import error_response

RefusalHook = Callable[[str], None]


class Admission:
    """`max_inflight` slots handed out in arrival order to at most `max_queued` waiters, each waiting `max_wait_s`."""

    def __init__(self, max_inflight: int, max_queued: int, max_wait_s: float) -> None:
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def enter(self) -> str | None:
        """Take a slot: None once taken, else why not ("queue_full" or "queue_timeout")."""
        # One event loop and no await between check and update: no lock needed.
        if self.inflight < self.max_inflight and not self._waiters:
            self.inflight += 1
            return None
        if len(self._waiters) >= self.max_queued:
            return "queue_full"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter
        except TimeoutError:
            self._abandon(waiter)
            return "queue_timeout"
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        return None

    def leave(self) -> None:
        """Give the slot to the longest-waiting request, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; `inflight` stays the same
                return
        self.inflight -= 1

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.leave()  # a slot was handed over just as the wait ended: pass it on rather than leak it
        elif waiter in self._waiters:
            self._waiters.remove(waiter)


class InflightLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        admission: Admission,
        retry_after_s: int,
        exempt: Collection[str] = (),
        on_refuse: RefusalHook | None = None,
    ) -> None:
        self.app = app
        self.admission = admission
        self.retry_after_s = retry_after_s
        self.exempt = frozenset(exempt)
        self.on_refuse = on_refuse or (lambda reason: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        admission = self.admission
        refused = await admission.enter()
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
            admission.leave()
