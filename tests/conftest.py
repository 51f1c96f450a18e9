"""Fixtures for tests against the real local stack (`python -m stack up`, which `make test` runs)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pymysql
import pytest
import redis
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from confluent_kafka.admin import AdminClient
from prometheus_client import generate_latest
from starlette.applications import Starlette

from gateway.accounts.invitation_store import InvitationStore
from gateway.accounts.invitations import InvitationRoutes
from gateway.accounts.passwords import PasswordHashing
from gateway.accounts.profiles import ProfileCache
from gateway.accounts.routes import Accounts
from gateway.accounts.store import AccountStore
from gateway.accounts.tokens import token_service
from gateway.clients.mysql import GatewayMySQL
from gateway.http.errors import EXCEPTION_HANDLERS
from gateway.middleware.authentication import authentication_middleware
from gateway.middleware.ratelimit import LocalGcra, RateLimiter
from gateway.ops.metrics import GatewayMetrics
from jobstream.breaker import CircuitBreaker
from jobstream.settings import Settings
from schemas import load_event_schemas
from state.migrate import connect


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Every async test runs on asyncio, the loop uvicorn and the gateway run on."""
    return "asyncio"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def kafka_admin(settings: Settings) -> AdminClient:
    admin = AdminClient({**settings.kafka.client_config(), "log_level": 0})
    try:
        admin.describe_cluster(request_timeout=5).result()
    except Exception as error:
        pytest.fail(f"Kafka at {settings.kafka.bootstrap} does not answer ({error}); run `make run` first")
    return admin


@pytest.fixture
def mysql(settings: Settings) -> Iterator[pymysql.Connection]:
    try:
        connection = connect(settings.mysql)
    except pymysql.MySQLError as error:
        pytest.fail(f"MySQL at {settings.mysql_url} does not answer ({error}); run `make run` first")
    with connection:
        yield connection


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {settings.redis_url} does not answer ({error}); run `make run` first")
    with client:
        yield client


@pytest.fixture
async def async_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """An asyncio Redis client for the gateway's code under test; only anyio-marked tests may use it."""
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        await client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {settings.redis_url} does not answer ({error}); run `make run` first")
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def topology_launcher(settings: Settings, kafka_admin: AdminClient, tmp_path_factory: pytest.TempPathFactory):
    """Starts topologies as processes with unique groups (tests/topology_harness.py); stops and cleans up."""
    from tests.topology_harness import TopologyLauncher

    launcher = TopologyLauncher(settings.kafka, kafka_admin, tmp_path_factory.mktemp("topologies"))
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def acceptance_topology(topology_launcher):
    """One acceptance process per test module; each test uses its own job ids.

    Per module, not per session: a second acceptance group left running would decide every later module's
    applications a second time on the shared topics (the end-to-end test counts decisions in Redis).
    """
    inputs = ["job.lifecycle", "application.created", "application.stage_changed"]
    process = topology_launcher.create("acceptance", inputs).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def event_producer(settings: Settings):
    from tests.topology_harness import EventProducer

    producer = EventProducer(settings.kafka)
    yield producer
    producer.flush()


@pytest.fixture
def _gateway_registries() -> dict[int, GatewayMetrics]:
    return {}


@pytest.fixture
def gateway_metrics(_gateway_registries: dict[int, GatewayMetrics]) -> Callable[[httpx.AsyncClient], str]:
    """`gateway_metrics(client)`: what the metrics port would answer for the gateway app behind `client`."""

    def scrape(client: httpx.AsyncClient) -> str:
        return generate_latest(_gateway_registries[id(client)].registry).decode()

    return scrape


@pytest.fixture
async def gateway_factory(settings: Settings, _gateway_registries: dict[int, GatewayMetrics]):
    """Builds gateway apps (optionally with other settings), runs each one's lifespan and yields an httpx client.

    `make(bootstrap=..., redis_url=..., client=(ip, port), **gateway_overrides)`, `bootstrap` being Kafka's servers;
    everything is closed after the test. The client address defaults to httpx's 127.0.0.1. `gateway_metrics(client)`
    scrapes its metrics.
    """
    import contextlib
    import dataclasses

    import httpx

    from gateway.app import build_app

    async with contextlib.AsyncExitStack() as stack:

        async def make(
            *,
            bootstrap: str | None = None,
            redis_url: str | None = None,
            client: tuple[str, int] = ("127.0.0.1", 123),
            **overrides: object,
        ):
            changed = dataclasses.replace(
                settings,
                kafka=dataclasses.replace(settings.kafka, bootstrap=bootstrap or settings.kafka.bootstrap),
                redis_url=redis_url or settings.redis_url,
                gateway=dataclasses.replace(settings.gateway, **overrides),
            )
            metrics = GatewayMetrics()
            app = build_app(changed, metrics=metrics)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=client)
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://gateway"))
            _gateway_registries[id(http)] = metrics
            return http

        yield make


@pytest.fixture
async def mint_token(settings: Settings, async_redis: aioredis.Redis):
    """`mint_token(role, company_id=None)` -> (user_id, headers with a real access token for a new user)."""
    import uuid

    from gateway.accounts.tokens import token_service
    from gateway.http.principal import Role

    tokens = token_service(settings.accounts, async_redis)

    def mint(role: Role, company_id: str | None = None) -> tuple[str, dict[str, str]]:
        user_id = str(uuid.uuid4())
        issued = tokens.issue(user_id, role, company_id, session_id=str(uuid.uuid4()))
        return user_id, {"Authorization": f"Bearer {issued.token}"}

    return mint


@pytest.fixture
def kafka_tail(settings: Settings):
    """`kafka_tail(topic)` -> a consumer (own unique group) positioned at the current end of every partition."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    consumers = []

    def tail(topic: str) -> Consumer:
        consumer = Consumer(
            {
                **settings.kafka.client_config(),
                "group.id": f"test-gateway-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        consumers.append(consumer)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = []
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends.append(TopicPartition(topic, partition, high))
        consumer.assign(ends)
        return consumer

    yield tail
    for consumer in consumers:
        consumer.close()


AccountsClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def accounts_client(settings: Settings, async_redis: aioredis.Redis) -> AsyncIterator[AccountsClientFactory]:
    """Factory: an HTTP client on an app of the accounts and invitation routes behind the token middleware, from its
    own client IP.

    Keyword arguments override AccountSettings fields (login limits, TTLs). Passwords use cheap argon2 parameters.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def make(**account_overrides: object) -> httpx.AsyncClient:
            account_settings = dataclasses.replace(settings.accounts, **account_overrides)
            redis_breaker = CircuitBreaker("redis", failures=5, reset_s=1, errors=(redis.RedisError, OSError))
            mysql_breaker = CircuitBreaker("mysql", failures=5, reset_s=1, errors=(pymysql.OperationalError,))
            mysql = GatewayMySQL(settings.mysql, 4, mysql_breaker)
            stack.callback(mysql.close)
            store = AccountStore(mysql)
            passwords = PasswordHashing(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1), max_concurrency=2)
            stack.callback(passwords.close)
            tokens = token_service(account_settings, async_redis)
            invitations = InvitationStore(mysql)
            limiter = RateLimiter(async_redis, redis_breaker, LocalGcra())
            accounts = Accounts(
                store=store,
                invitations=invitations,
                tokens=tokens,
                passwords=passwords,
                profiles=ProfileCache(async_redis, redis_breaker, ttl_s=account_settings.profile_cache_ttl_s),
                limiter=limiter,
                settings=account_settings,
                user_registered=load_event_schemas()["user_registered"],
            )
            app = Starlette(
                routes=[*accounts.routes(), *InvitationRoutes(invitations, limiter, account_settings).routes()],
                middleware=[authentication_middleware(tokens)],
                exception_handlers=EXCEPTION_HANDLERS,
            )
            client_ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
            transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
            return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://gateway"))

        yield make


@pytest.fixture
def scratch_database(settings: Settings, mysql: pymysql.Connection) -> Iterator[str]:
    """A private database ``jobstream_t<hex>`` with every migration applied, dropped after the test."""
    import uuid

    from state.migrate import apply_migrations, load_migrations

    name = f"jobstream_t{uuid.uuid4().hex[:12]}"
    with mysql.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        with connect(settings.mysql, name) as connection:
            apply_migrations(connection, load_migrations())
        yield name
    finally:
        with mysql.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def services(settings: Settings, tmp_path):
    """Starts the platform's processes for one test; stops every one afterwards, and prints their logs
    (pytest shows them when the test failed)."""
    from tests.e2e_harness import Services

    started = Services(settings, tmp_path / "services")
    try:
        yield started
    finally:
        print(started.logs())
        started.close()


@pytest.fixture
def decided(settings: Settings):
    """application.decided, read from its current end."""
    from tests.topology_harness import EVENTS, TopicReader

    reader = TopicReader(settings.kafka, "application.decided", EVENTS["application_decided"])
    yield reader
    reader.close()
