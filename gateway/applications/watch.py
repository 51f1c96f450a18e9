"""Wake long-polls when an application changes: one Redis subscription per gateway, many waiters.

The Redis sink publishes the id of each application whose read model it just wrote (a decision, a stage) on
``jobstream:applications:changed``. A request waiting for one application registers here and sleeps on an
`asyncio.Event`; it holds no MySQL connection and no Redis connection of its own while it waits. If the
subscription drops, it is made again with backoff; waiters meanwhile simply run out their wait, as they would with
nothing published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as redis

from jobstream.backoff import Backoff
from state import redis_keys

log = logging.getLogger(__name__)

_RESUBSCRIBE = Backoff(base_s=0.5, cap_s=10.0)
_IDLE_S = 5.0
# Long-polls skip the gateway's admission queue (they only wait); this bounds them instead.
MAX_WAITERS = 4096


class TooManyWaiters(Exception):
    """Every waiting place is taken: the caller is refused (503), as by a full admission queue."""


class ApplicationWatch:
    def __init__(self, client: redis.Redis, *, max_waiters: int = MAX_WAITERS) -> None:
        self._client = client
        self._max_waiters = max_waiters
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Requests waiting now, over every application."""
        return self._count

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="application-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def subscribed(self, timeout_s: float) -> bool:
        """Whether the subscription is up (within `timeout_s`): a change published from then on wakes waiters."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._subscribed.wait()
        return self._subscribed.is_set()

    @contextlib.asynccontextmanager
    async def watching(self, application_id: str) -> AsyncIterator[asyncio.Event]:
        """Within the block, `await changed.wait()` returns once `application_id` changed (register before reading
        the current state, so that a change between the read and the wait is not missed)."""
        if self._count >= self._max_waiters:
            raise TooManyWaiters
        changed = asyncio.Event()
        self._waiters.setdefault(application_id, set()).add(changed)
        self._count += 1
        try:
            yield changed
        finally:
            self._count -= 1
            events = self._waiters.get(application_id)
            if events is not None:
                events.discard(changed)
                if not events:
                    del self._waiters[application_id]

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(redis_keys.APPLICATIONS_CHANGED)
                    self._subscribed.set()
                    failures = 0
                    while True:
                        # A bounded wait, so the client's health check (a PING when idle) runs now and then and
                        # a connection to a server that went away is noticed.
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_S)
                        if message is not None:
                            self._wake(message["data"])
            except (redis.RedisError, OSError) as error:
                self._subscribed.clear()
                failures += 1
                delay_s = _RESUBSCRIBE.delay_s(failures)
                log.warning("application watch lost its subscription (%s); again in %.1f s", error, delay_s)
                await asyncio.sleep(delay_s)
            except Exception:
                # A bug here must not silently end every wake-up for the life of the process.
                self._subscribed.clear()
                failures += 1
                log.exception("application watch failed; subscribing again")
                await asyncio.sleep(_RESUBSCRIBE.delay_s(failures))

    def _wake(self, data: object) -> None:
        application_id = data.decode() if isinstance(data, bytes) else str(data)
        for changed in self._waiters.get(application_id, ()):
            changed.set()
