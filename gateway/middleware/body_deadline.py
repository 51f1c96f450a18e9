"""Whole request bodies, read before admission within a deadline: slow senders cannot hold the gateway's slots.

Without it, a request is admitted once its headers arrive and then holds one of the few admission slots for as long
as its client takes to send the body: a few dozen connections dribbling a byte a second would take every slot, and
every other request (reads included) would get 503. Here a request that carries a body is read whole, up to
`max_body_bytes` (413 past it) and within `timeout_s` of its headers (408 past it), and only then handed on, with a
`receive` that replays the buffered body. A client that hangs up mid-body gets the 499 nobody reads and no traceback.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.errors import error_response


class _ClientGone(Exception):
    """The client disconnected before its body was complete."""


class _BodyTooLarge(Exception):
    """The body grew past the limit."""


class BodyDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, timeout_s: float, max_body_bytes: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            response = error_response(
                408,
                "body_timeout",
                f"the request body did not arrive within {self.timeout_s:g} s",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)
            return
        except _ClientGone:
            # Nobody is left to answer: 499 (nginx's "client closed request") only keeps metrics honest.
            await error_response(499, "client_disconnected", "the client closed the connection mid-body")(
                scope, receive, send
            )
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                raise _BodyTooLarge
            if not message.get("more_body", False):
                return bytes(body)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "body_too_large",
            f"the body must be at most {self.max_body_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then whatever the connection says next (a disconnect, eventually)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length != "0"
    return _header(scope, b"transfer-encoding") is not None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1").strip()
    return None
