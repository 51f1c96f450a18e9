"""Request bodies are read whole, within a deadline, before admission: in isolation, then on the real server."""

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest

from gateway.middleware.body_deadline import BodyDeadlineMiddleware
from tests.gateway_process import gateway_process

pytestmark = pytest.mark.anyio


def _scope(headers):
    return {"type": "http", "method": "POST", "path": "/v1/x", "query_string": b"", "headers": headers}


async def _call(middleware, scope, messages, *, delay_s=0.0):
    """Runs `middleware` on `messages` (each after `delay_s`); the response start and body it sent."""
    sent = []

    async def receive():
        if not messages:
            await asyncio.sleep(3600)  # a connection with nothing more to say
        await asyncio.sleep(delay_s)
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


def _status(sent):
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


@pytest.mark.unit
async def test_the_app_gets_the_whole_body_at_once_through_a_replaying_receive():
    seen = []

    async def app(scope, receive, send):
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = BodyDeadlineMiddleware(app, timeout_s=1, max_body_bytes=100)
    chunks = [{"type": "http.request", "body": part, "more_body": True} for part in (b'{"a"', b": ", b"1")]
    chunks.append({"type": "http.request", "body": b"}", "more_body": False})

    sent = await _call(middleware, _scope([(b"content-length", b"8")]), chunks)

    assert _status(sent) == 204
    assert seen == [{"type": "http.request", "body": b'{"a": 1}', "more_body": False}]


@pytest.mark.unit
async def test_a_body_slower_than_the_deadline_gets_408_before_the_app_runs():
    async def app(scope, receive, send):
        raise AssertionError("the app must not run")

    middleware = BodyDeadlineMiddleware(app, timeout_s=0.2, max_body_bytes=100)
    dribble = [{"type": "http.request", "body": b"x", "more_body": True} for _ in range(50)]

    started = time.monotonic()
    sent = await _call(middleware, _scope([(b"content-length", b"50")]), dribble, delay_s=0.05)

    assert _status(sent) == 408
    assert b'"body_timeout"' in sent[1]["body"]
    assert (b"connection", b"close") in sent[0]["headers"]
    assert 0.2 <= time.monotonic() - started < 0.5


@pytest.mark.unit
@pytest.mark.parametrize("declared", [b"101", None])
async def test_a_body_past_max_body_bytes_gets_413_declared_or_not(declared):
    async def app(scope, receive, send):
        raise AssertionError("the app must not run")

    middleware = BodyDeadlineMiddleware(app, timeout_s=1, max_body_bytes=100)
    headers = [(b"content-length", declared)] if declared else [(b"transfer-encoding", b"chunked")]
    chunks = [{"type": "http.request", "body": b"x" * 60, "more_body": True} for _ in range(2)]

    sent = await _call(middleware, _scope(headers), chunks)

    assert _status(sent) == 413
    assert b'"body_too_large"' in sent[1]["body"]


@pytest.mark.unit
async def test_a_client_hanging_up_mid_body_is_dropped_quietly():
    async def app(scope, receive, send):
        raise AssertionError("the app must not run")

    middleware = BodyDeadlineMiddleware(app, timeout_s=1, max_body_bytes=100)
    messages = [{"type": "http.request", "body": b'{"a', "more_body": True}, {"type": "http.disconnect"}]

    sent = await _call(middleware, _scope([(b"content-length", b"20")]), messages)

    assert _status(sent) == 499  # what the metrics record; the client is gone


@pytest.mark.unit
async def test_a_request_without_a_body_passes_straight_through():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = BodyDeadlineMiddleware(app, timeout_s=0.01, max_body_bytes=100)
    scope = {**_scope([]), "method": "GET"}

    assert _status(await _call(middleware, scope, [])) == 200


async def _dribble(port: int, bytes_per_s: float, stop: asyncio.Event) -> bytes:
    """A login (no token needed, body read first) promising 1,000 body bytes, sent one byte at a time; all the
    server said before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/auth/login HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    try:
        answer = asyncio.ensure_future(reader.read())
        while not answer.done() and not stop.is_set():
            writer.write(b" ")
            await writer.drain()
            await asyncio.wait([answer], timeout=1 / bytes_per_s)
        return await asyncio.wait_for(answer, 5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_slow_body_senders_hold_no_admission_slot_and_get_408_after_the_deadline(tmp_path):
    max_inflight, dribblers = 4, 12
    with gateway_process(tmp_path, max_inflight=str(max_inflight), max_queued="4", body_timeout_ms="3000") as gateway:
        stop = asyncio.Event()
        started = time.monotonic()
        slow = [asyncio.create_task(_dribble(gateway.port, 5, stop)) for _ in range(dribblers)]
        await asyncio.sleep(1.0)  # every dribbler is mid-body now

        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            search_started = time.monotonic()
            search = await client.get("/v1/jobs", params={"q": f"nothing{uuid.uuid4().hex}"})
            search_s = time.monotonic() - search_started
        answers = await asyncio.wait_for(asyncio.gather(*slow), 10)
        answered_after = time.monotonic() - started
        stop.set()

    assert search.status_code == 200, search.text
    assert search_s < 1.0, f"GET /v1/jobs took {search_s:.2f} s behind {dribblers} slow bodies"
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers
    assert all(b'"body_timeout"' in answer for answer in answers)
    assert 3.0 <= answered_after < 6.0
