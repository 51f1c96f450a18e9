"""Fixtures for tests against the real local stack (`python -m stack up`, which `make test` runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
import redis
from confluent_kafka.admin import AdminClient

from jobstream.settings import Settings
from state.migrate import connect


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def kafka_admin(settings: Settings) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    try:
        admin.describe_cluster(request_timeout=5).result()
    except Exception as error:
        pytest.fail(f"Kafka at {settings.kafka_bootstrap} does not answer ({error}); run `make run` first")
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
