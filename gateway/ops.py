"""Operations endpoints: liveness, readiness (Kafka, MySQL, Redis each answer), Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import Unavailable
from gateway.metrics import GatewayMetrics
from gateway.producer import EventProducer
from gateway.readmodels import ReadModels

_PROBE_TIMEOUT_S = 2.0


class OpsRoutes:
    def __init__(
        self, producer: EventProducer, read_models: ReadModels, redis_client: redis.Redis, metrics: GatewayMetrics
    ) -> None:
        self._producer = producer
        self._read_models = read_models
        self._redis = redis_client
        self._metrics = metrics

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        kafka, mysql, redis_ok = await asyncio.gather(
            asyncio.to_thread(self._producer.reachable, _PROBE_TIMEOUT_S),
            self._probe(self._read_models.ping()),
            self._probe(self._redis.ping()),
        )
        checks = {"kafka": kafka, "mysql": mysql, "redis": redis_ok}
        ready = all(checks.values())
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": {k: "ok" if v else "down" for k, v in checks.items()},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        self._metrics.producer_queue.set(self._producer.queue_depth())
        self._metrics.db_in_use.set(self._read_models.in_use)
        return Response(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @staticmethod
    async def _probe(check: Any) -> bool:
        try:
            await asyncio.wait_for(check, _PROBE_TIMEOUT_S)
        except (Unavailable, OSError, TimeoutError, redis.RedisError):
            return False
        return True
