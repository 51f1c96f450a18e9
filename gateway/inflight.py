"""Bounded in-flight requests: past the bound the gateway answers 503 at once rather than queue work it cannot finish.

Probes and metrics (`exempt` paths) are never refused, so an overloaded gateway still says how it is doing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import error_response

GaugeHook = Callable[[int], None]


class InflightLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_inflight: int,
        retry_after_s: int,
        exempt: Collection[str] = (),
        on_change: GaugeHook | None = None,
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.retry_after_s = retry_after_s
        self.exempt = frozenset(exempt)
        self.on_change = on_change or (lambda inflight: None)
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        # One event loop, no await between check and increment: no lock needed.
        if self.inflight >= self.max_inflight:
            response = error_response(
                503,
                "overloaded",
                f"the gateway is serving its maximum of {self.max_inflight} requests; retry shortly",
                headers={"Retry-After": str(self.retry_after_s)},
            )
            await response(scope, receive, send)
            return
        self.inflight += 1
        self.on_change(self.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            self.on_change(self.inflight)
