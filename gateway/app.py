"""Assembles the gateway: every client and dependency is created here, once, and handed to what uses it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pymysql
import redis.asyncio as redis
from argon2 import PasswordHasher
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway.accounts import Accounts
from gateway.accounts_passwords import PasswordHashing
from gateway.accounts_profiles import ProfileCache
from gateway.accounts_store import AccountStore
from gateway.analytics import AnalyticsRoutes
from gateway.applications import ApplicationRoutes, CandidateContacts
from gateway.authentication import authentication_middleware
from gateway.body_deadline import BodyDeadlineMiddleware
from gateway.cache import SwrCache
from gateway.docs import DocsRoutes
from gateway.errors import EXCEPTION_HANDLERS
from gateway.idempotency import IdempotencyStore
from gateway.inflight import Admission, InflightLimitMiddleware
from gateway.jobs import JobRoutes
from gateway.jobstore import JobStore
from gateway.metrics import GatewayMetrics, MetricsMiddleware
from gateway.mysql import GatewayMySQL
from gateway.ops import OpsRoutes
from gateway.producer import EventProducer, ProduceUnavailable
from gateway.ratelimit import LocalGcra, Rate, RateLimiter, RateLimitMiddleware
from gateway.readmodels import ReadModels
from gateway.tokens import token_service
from jobstream.breaker import CircuitBreaker
from jobstream.settings import Settings
from schemas import load_event_schemas, topic_catalog

SEARCH_CACHE_TTL_S = 60
DETAIL_CACHE_TTL_S = 300
# Analytics figures change only when a window closes (once a minute at most).
ANALYTICS_CACHE_TTL_S = 30
_OPS_PATHS = ("/healthz", "/readyz")


def build_app(settings: Settings, *, metrics: GatewayMetrics | None = None) -> Starlette:
    """The gateway app for `settings`; its lifespan starts the Kafka producer and closes every client after.

    It records into `metrics` (a fresh GatewayMetrics by default); whoever passes it serves its registry.
    """
    gw = settings.gateway
    metrics = metrics or GatewayMetrics()
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
    # One immediate retry rides out a dropped connection; more would only stretch a Redis outage per request.
    kafka_breaker = CircuitBreaker("kafka", failures=gw.breaker_failures, reset_s=reset_s, errors=(ProduceUnavailable,))
    redis_client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=gw.redis_timeout_ms / 1000,
        socket_connect_timeout=gw.redis_timeout_ms / 1000,
        retry=Retry(NoBackoff(), 1),
    )
    events = load_event_schemas()
    topic_events = {
        spec.name: events[spec.event] for spec in topic_catalog(settings.topic_replication_factor) if spec.event
    }
    producer = EventProducer(
        settings.kafka_bootstrap,
        topic_events,
        ack_timeout_s=gw.produce_timeout_ms / 1000,
        retry_after_s=gw.retry_after_s,
        breaker=kafka_breaker,
        on_delivery=metrics.delivered,
    )
    mysql = GatewayMySQL(settings.mysql, gw.mysql_pool_size, mysql_breaker)
    read_models = ReadModels(mysql)
    metrics.watch_producer(producer.queue_depth)
    metrics.watch_mysql(lambda: mysql.in_use)
    tokens = token_service(settings.accounts, redis_client)
    search_cache = SwrCache(
        redis_client,
        redis_breaker,
        name="job_search",
        fresh_s=SEARCH_CACHE_TTL_S,
        stale_s=SEARCH_CACHE_TTL_S,
        on_lookup=metrics.cache_lookup,
    )
    detail_cache = SwrCache(
        redis_client,
        redis_breaker,
        name="job_detail",
        fresh_s=DETAIL_CACHE_TTL_S,
        stale_s=60,
        on_lookup=metrics.cache_lookup,
    )
    analytics_cache = SwrCache(
        redis_client,
        redis_breaker,
        name="analytics",
        fresh_s=ANALYTICS_CACHE_TTL_S,
        stale_s=10,
        on_lookup=metrics.cache_lookup,
    )
    # A job's edit lock outlives the longest wait for Kafka, so it cannot expire under a running change.
    lock_ms = gw.produce_timeout_ms + 5_000
    idempotency = IdempotencyStore(redis_client, redis_breaker, ttl_s=gw.idempotency_ttl_s, lease_ms=lock_ms)
    limiter = RateLimiter(redis_client, redis_breaker, LocalGcra())
    account_store = AccountStore(mysql)
    # argon2 is CPU- and memory-bound: more hashing threads than cores only queue inside the executor.
    passwords = PasswordHashing(
        PasswordHasher(),
        max_concurrency=os.cpu_count() or 1,
        max_queued=gw.max_queued_hashes,
        retry_after_s=gw.retry_after_s,
    )
    profiles = ProfileCache(
        redis_client, redis_breaker, ttl_s=settings.accounts.profile_cache_ttl_s, on_lookup=metrics.cache_lookup
    )
    accounts = Accounts(
        store=account_store,
        tokens=tokens,
        passwords=passwords,
        profiles=profiles,
        limiter=limiter,
        settings=settings.accounts,
        user_registered=events["user_registered"],
    )

    routes: list[BaseRoute] = [
        *OpsRoutes(producer, read_models, redis_client).routes(),
        *DocsRoutes().routes(),
        *AnalyticsRoutes(read_models, analytics_cache).routes(),
        *accounts.routes(),
        *ApplicationRoutes(
            producer,
            idempotency,
            read_models,
            CandidateContacts(profiles, account_store),
            max_body_bytes=gw.max_body_bytes,
        ).routes(),
        *JobRoutes(
            producer,
            JobStore(redis_client, redis_breaker, read_models),
            read_models,
            search_cache,
            detail_cache,
            max_body_bytes=gw.max_body_bytes,
            lock_ms=lock_ms,
        ).routes(),
    ]
    admission = Admission(
        gw.max_inflight, gw.max_queued, gw.queue_wait_ms / 1000, max_per_client=gw.max_inflight_per_client
    )
    metrics.watch_admission(admission)
    # X-Forwarded-For is believed only from the configured proxies; then every limit below keys on the client it
    # names. uvicorn itself runs with proxy_headers=False, so in-process apps behave as the server does.
    proxies = [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(gw.trusted_proxies))] if gw.trusted_proxies else []
    middleware = [
        *proxies,
        Middleware(MetricsMiddleware, metrics=metrics),
        # Outside admission: a body arrives whole (or 408/413) before its request may take a slot.
        Middleware(BodyDeadlineMiddleware, timeout_s=gw.body_timeout_ms / 1000, max_body_bytes=gw.max_body_bytes),
        Middleware(
            InflightLimitMiddleware,
            admission=admission,
            retry_after_s=gw.retry_after_s,
            exempt=_OPS_PATHS,
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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        producer.start()
        try:
            yield
        finally:
            await search_cache.close()
            await detail_cache.close()
            await analytics_cache.close()
            await asyncio.to_thread(producer.stop)
            await asyncio.to_thread(mysql.close)
            await asyncio.to_thread(passwords.close)
            await redis_client.aclose()

    return Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
