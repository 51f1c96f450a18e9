"""Assembles the gateway: every client and dependency is created here, once, and handed to what uses it.

`build_app` reads as the gateway's table of contents: the clients (each behind its breaker), the feature routes,
the middleware in the order a request meets it, and one exit stack that closes every client at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pymysql
import redis.asyncio as redis
from argon2 import PasswordHasher
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway.accounts.invitation_store import InvitationStore
from gateway.accounts.invitations import InvitationRoutes
from gateway.accounts.passwords import PasswordHashing
from gateway.accounts.profiles import ProfileCache
from gateway.accounts.routes import Accounts
from gateway.accounts.store import AccountStore
from gateway.accounts.tokens import TokenService, token_service
from gateway.analytics.routes import AnalyticsRoutes
from gateway.applications.idempotency import IdempotencyStore
from gateway.applications.recent import RecentApplications
from gateway.applications.routes import ApplicationRoutes
from gateway.applications.watch import ApplicationWatch
from gateway.clients.cache import SwrCache
from gateway.clients.mysql import GatewayMySQL
from gateway.clients.producer import EventProducer, ProduceUnavailable
from gateway.clients.readmodels import ReadModels
from gateway.http.errors import EXCEPTION_HANDLERS
from gateway.http.openapi import DocsRoutes
from gateway.jobs.live import LiveJobStats
from gateway.jobs.routes import JobRoutes
from gateway.jobs.store import JobStore
from gateway.middleware.admission import Admission, InflightLimitMiddleware
from gateway.middleware.authentication import authentication_middleware
from gateway.middleware.body_deadline import BodyDeadlineMiddleware
from gateway.middleware.ratelimit import LocalGcra, Rate, RateLimiter, RateLimitMiddleware
from gateway.ops.metrics import GatewayMetrics, MetricsMiddleware
from gateway.ops.routes import OpsRoutes
from jobstream.breaker import CircuitBreaker
from jobstream.settings import Settings
from schemas import load_event_schemas, topic_catalog

SEARCH_CACHE_TTL_S = 60
DETAIL_CACHE_TTL_S = 300
# Analytics figures change only when a window closes (once a minute at most).
ANALYTICS_CACHE_TTL_S = 30
TRENDING_CACHE_TTL_S = 30
# A pending application's owner is kept this long: far past the time any decision takes to land.
PENDING_TTL_S = 7 * 24 * 3600
_OPS_PATHS = ("/healthz", "/readyz")
_STATUS_PATH = re.compile(r"^/v1/applications/[^/]+$")
_WAIT = re.compile(rb"(^|&)wait=0*[1-9]")


def admission_exempt(scope: Scope) -> bool:
    """Probes, and status long-polls (bounded by the application watch's own cap): neither queues for a slot."""
    path = scope["path"]
    return path in _OPS_PATHS or (
        _STATUS_PATH.match(path) is not None and _WAIT.search(scope["query_string"]) is not None
    )


@dataclass(frozen=True)
class Clients:
    """The gateway's connections to the platform's three stores, shared by every route."""

    redis: redis.Redis
    redis_breaker: CircuitBreaker
    producer: EventProducer
    mysql: GatewayMySQL
    read_models: ReadModels
    watch: ApplicationWatch


def build_app(settings: Settings, *, metrics: GatewayMetrics | None = None) -> Starlette:
    """The gateway app for `settings`; its lifespan starts the Kafka producer and closes every client after.

    It records into `metrics` (a fresh GatewayMetrics by default); whoever passes it serves its registry.
    """
    metrics = metrics or GatewayMetrics()
    resources = contextlib.AsyncExitStack()
    clients = _clients(settings, metrics, resources)
    tokens = token_service(settings.accounts, clients.redis)
    limiter = RateLimiter(clients.redis, clients.redis_breaker, LocalGcra())
    routes = _routes(settings, clients, tokens, limiter, metrics, resources)
    middleware = _middleware(settings, tokens, limiter, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with resources:
            clients.producer.start()
            resources.push_async_callback(asyncio.to_thread, clients.producer.stop)
            clients.watch.start()
            resources.push_async_callback(clients.watch.close)
            yield

    return Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)


def _clients(settings: Settings, metrics: GatewayMetrics, resources: contextlib.AsyncExitStack) -> Clients:
    gw = settings.gateway
    reset_s = gw.breaker_reset_ms / 1000
    redis_breaker = CircuitBreaker(
        "redis", failures=gw.breaker_failures, reset_s=reset_s, errors=(redis.RedisError, OSError, TimeoutError)
    )
    mysql_breaker = CircuitBreaker(
        "mysql",
        failures=gw.breaker_failures,
        reset_s=reset_s,
        errors=(pymysql.OperationalError, pymysql.InterfaceError, OSError),
    )
    kafka_breaker = CircuitBreaker("kafka", failures=gw.breaker_failures, reset_s=reset_s, errors=(ProduceUnavailable,))
    # One immediate retry rides out a dropped connection; more would only stretch a Redis outage per request.
    redis_client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=gw.redis_timeout_ms / 1000,
        socket_connect_timeout=gw.redis_timeout_ms / 1000,
        retry=Retry(NoBackoff(), 1),
    )
    resources.push_async_callback(redis_client.aclose)
    events = load_event_schemas()
    topic_events = {
        spec.name: events[spec.event] for spec in topic_catalog(settings.topic_replication_factor) if spec.event
    }
    producer = EventProducer(
        settings.kafka,
        topic_events,
        ack_timeout_s=gw.produce_timeout_ms / 1000,
        retry_after_s=gw.retry_after_s,
        breaker=kafka_breaker,
        on_delivery=metrics.delivered,
    )
    mysql = GatewayMySQL(settings.mysql, gw.mysql_pool_size, mysql_breaker)
    resources.push_async_callback(asyncio.to_thread, mysql.close)
    metrics.watch_producer(producer.queue_depth)
    metrics.watch_mysql(lambda: mysql.in_use)
    metrics.watch_breakers([redis_breaker, mysql_breaker, kafka_breaker])
    # Its own connection for the long-lived subscription, without the request timeout (it waits by design); the
    # health check pings an idle one now and then, so a server gone away is noticed.
    subscriber = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=gw.redis_timeout_ms / 1000, health_check_interval=10
    )
    resources.push_async_callback(subscriber.aclose)
    return Clients(redis_client, redis_breaker, producer, mysql, ReadModels(mysql), ApplicationWatch(subscriber))


def _cache(clients: Clients, metrics: GatewayMetrics, resources: contextlib.AsyncExitStack, **policy: Any) -> SwrCache:
    cache = SwrCache(clients.redis, clients.redis_breaker, on_lookup=metrics.cache_lookup, **policy)
    resources.push_async_callback(cache.close)
    return cache


def _routes(
    settings: Settings,
    clients: Clients,
    tokens: TokenService,
    limiter: RateLimiter,
    metrics: GatewayMetrics,
    resources: contextlib.AsyncExitStack,
) -> list[BaseRoute]:
    gw = settings.gateway
    # argon2 is CPU- and memory-bound: more hashing threads than cores only queue inside the executor.
    passwords = PasswordHashing(
        PasswordHasher(),
        max_concurrency=os.cpu_count() or 1,
        max_queued=gw.max_queued_hashes,
        retry_after_s=gw.retry_after_s,
    )
    resources.push_async_callback(asyncio.to_thread, passwords.close)
    profiles = ProfileCache(
        clients.redis,
        clients.redis_breaker,
        ttl_s=settings.accounts.profile_cache_ttl_s,
        on_lookup=metrics.cache_lookup,
    )
    account_store = AccountStore(clients.mysql)
    invitation_store = InvitationStore(clients.mysql)
    accounts = Accounts(
        store=account_store,
        invitations=invitation_store,
        tokens=tokens,
        passwords=passwords,
        profiles=profiles,
        limiter=limiter,
        settings=settings.accounts,
        user_registered=load_event_schemas()["user_registered"],
    )
    # A job's edit lock outlives the longest wait for Kafka, so it cannot expire under a running change.
    lock_ms = gw.produce_timeout_ms + 5_000
    idempotency = IdempotencyStore(clients.redis, clients.redis_breaker, ttl_s=gw.idempotency_ttl_s, lease_ms=lock_ms)
    analytics_cache = _cache(clients, metrics, resources, name="analytics", fresh_s=ANALYTICS_CACHE_TTL_S, stale_s=10)
    search_cache = _cache(
        clients, metrics, resources, name="job_search", fresh_s=SEARCH_CACHE_TTL_S, stale_s=SEARCH_CACHE_TTL_S
    )
    detail_cache = _cache(clients, metrics, resources, name="job_detail", fresh_s=DETAIL_CACHE_TTL_S, stale_s=60)
    return [
        *OpsRoutes(clients.producer, clients.read_models, clients.redis).routes(),
        *DocsRoutes().routes(),
        *AnalyticsRoutes(clients.read_models, analytics_cache).routes(),
        *accounts.routes(),
        *InvitationRoutes(invitation_store, limiter, settings.accounts).routes(),
        *ApplicationRoutes(
            clients.producer,
            idempotency,
            clients.read_models,
            RecentApplications(clients.redis, clients.redis_breaker, ttl_s=PENDING_TTL_S),
            clients.watch,
            max_body_bytes=gw.max_body_bytes,
        ).routes(),
        *JobRoutes(
            clients.producer,
            JobStore(clients.redis, clients.redis_breaker, clients.read_models),
            clients.read_models,
            search_cache,
            detail_cache,
            LiveJobStats(clients.redis, clients.redis_breaker),
            _cache(clients, metrics, resources, name="jobs_trending", fresh_s=TRENDING_CACHE_TTL_S, stale_s=30),
            max_body_bytes=gw.max_body_bytes,
            lock_ms=lock_ms,
        ).routes(),
    ]


def _middleware(
    settings: Settings, tokens: TokenService, limiter: RateLimiter, metrics: GatewayMetrics
) -> list[Middleware]:
    """Outermost first: the order a request meets them."""
    gw = settings.gateway
    admission = Admission(
        gw.max_inflight, gw.max_queued, gw.queue_wait_ms / 1000, max_per_client=gw.max_inflight_per_client
    )
    metrics.watch_admission(admission)
    # X-Forwarded-For is believed only from the configured proxies; then every limit below keys on the client it
    # names. uvicorn itself runs with proxy_headers=False, so in-process apps behave as the server does.
    proxies = [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(gw.trusted_proxies))] if gw.trusted_proxies else []
    # Outside everything that may refuse a request, so a browser can read a 401, 429 or 503 too. Bearer tokens, not
    # cookies: no credentials mode.
    cors = (
        [
            Middleware(
                CORSMiddleware,
                allow_origins=list(gw.cors_origins),
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
                max_age=600,
            )
        ]
        if gw.cors_origins
        else []
    )
    return [
        *proxies,
        *cors,
        Middleware(MetricsMiddleware, metrics=metrics),
        # Outside admission: a body arrives whole (or 408/413) before its request may take a slot.
        Middleware(BodyDeadlineMiddleware, timeout_s=gw.body_timeout_ms / 1000, max_body_bytes=gw.max_body_bytes),
        Middleware(
            InflightLimitMiddleware,
            admission=admission,
            retry_after_s=gw.retry_after_s,
            exempt=admission_exempt,
            on_refuse=metrics.overloaded,
        ),
        authentication_middleware(tokens),
        Middleware(
            RateLimitMiddleware,
            limiter=limiter,
            user_rate=Rate(gw.user_rate_per_min, gw.user_burst),
            ip_rate=Rate(gw.ip_rate_per_min, gw.ip_burst),
            on_reject=metrics.rejected,
        ),
    ]
