"""Operations endpoints: liveness and readiness (Kafka, MySQL, Redis each answer).

Metrics are not here: `python -m gateway` serves them on their own port (JOBSTREAM_GATEWAY_METRICS_PORT), off the
public one, from `GatewayMetrics.registry`.

Readiness is cached for `ready_ttl_s` and probed by one request at a time, so a flood of probes (a load balancer
per replica, a misconfigured check) costs at most one round of store pings per second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.clients.producer import EventProducer
from gateway.clients.readmodels import ReadModels
from jobstream.errors import DependencyUnavailable

_PROBE_TIMEOUT_S = 2.0
READY_TTL_S = 1.0

Checks = dict[str, bool]


class OpsRoutes:
    def __init__(
        self,
        producer: EventProducer,
        read_models: ReadModels,
        redis_client: redis.Redis,
        *,
        ready_ttl_s: float = READY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._read_models = read_models
        self._redis = redis_client
        self._ready_ttl_s = ready_ttl_s
        self._clock = clock
        self._last: tuple[float, Checks] | None = None
        self._probing: asyncio.Task[Checks] | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        checks = await self._checks()
        ready = all(checks.values())
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": {k: "ok" if v else "down" for k, v in checks.items()},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def _checks(self) -> Checks:
        """The last probe's result while fresh; else the running probe's, started if none runs."""
        if self._last is not None and self._clock() - self._last[0] < self._ready_ttl_s:
            return self._last[1]
        if self._probing is None:
            self._probing = asyncio.create_task(self._probe_all())
        # Shielded: a caller hanging up does not cancel the probe the others wait for.
        return await asyncio.shield(self._probing)

    async def _probe_all(self) -> Checks:
        try:
            kafka, mysql, redis_ok = await asyncio.gather(
                asyncio.to_thread(self._producer.reachable, _PROBE_TIMEOUT_S),
                self._probe(self._read_models.ping()),
                self._probe(self._redis.ping()),
            )
            checks = {"kafka": kafka, "mysql": mysql, "redis": redis_ok}
            self._last = (self._clock(), checks)
            return checks
        finally:
            self._probing = None

    @staticmethod
    async def _probe(check: Any) -> bool:
        try:
            await asyncio.wait_for(check, _PROBE_TIMEOUT_S)
        except (DependencyUnavailable, OSError, TimeoutError, redis.RedisError):
            return False
        return True
