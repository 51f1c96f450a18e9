"""The identity catalog matches what the code touches: tables from the migrations and read models, Redis keys from
state/redis_keys.py, consumer groups from the settings' defaults. (Kafka topics: tests/k8s/test_kafka_users.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import pytest

import state.redis_keys as keys
from jobstream.errors import SettingsError
from jobstream.identities import ACCOUNT_TABLES, IDENTITIES, READ_MODEL_TABLES, local_password
from jobstream.settings import Settings
from sinks.mysql.models import read_models
from state.migrate import load_migrations

pytestmark = pytest.mark.unit

_ID = "00000000-0000-4000-8000-000000000000"
READ_MODEL_KEYS = [
    keys.job_detail(_ID),
    keys.job_counters(_ID),
    keys.trending_jobs(datetime(2026, 12, 3, 9, tzinfo=UTC)),
    keys.candidate_applications(_ID),
    keys.application(_ID),
]
GATEWAY_KEYS = [
    keys.revoked_token(_ID),
    keys.revoked_session(_ID),
    keys.rate_limit("ip:127.0.0.1"),
    keys.idempotency(f"{_ID}:key"),
    keys.pending_application(_ID),
    keys.gateway_job(_ID),
    keys.gateway_job_lock(_ID),
    keys.cached("jobs", "page"),
    keys.cache_lock("jobs", "page"),
]
NOTIFICATION_KEYS = [keys.notification_delivered(_ID), keys.notification_sending(_ID)]


def _patterns(identity: str, prefix: str) -> list[str]:
    return [rule[len(prefix) :] for rule in IDENTITIES[identity].redis if rule.startswith(prefix)]


def writable(identity: str, key: str) -> bool:
    return any(fnmatchcase(key, pattern) for pattern in _patterns(identity, "~"))


def readable(identity: str, key: str) -> bool:
    return writable(identity, key) or any(fnmatchcase(key, pattern) for pattern in _patterns(identity, "%R~"))


def test_the_tables_are_the_migrations_and_the_read_models_are_the_sinks():
    created = set()
    for migration in load_migrations():
        created.update(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?`?(\w+)`?", migration.sql))
    assert set(READ_MODEL_TABLES) | set(ACCOUNT_TABLES) == created
    assert not set(READ_MODEL_TABLES) & set(ACCOUNT_TABLES)
    sink_tables = {table for model in read_models().values() for table in model.tables}
    assert sink_tables == set(READ_MODEL_TABLES)


def test_only_the_sinks_write_read_models_and_only_replay_changes_the_schema():
    for identity in IDENTITIES.values():
        if identity.superuser:
            continue
        for grant in identity.mysql:
            schema_changes = {"CREATE", "DROP", "ALTER", "INDEX"} & set(grant.privileges)
            assert not schema_changes or identity.name == "replay", identity.name
            writes = {"INSERT", "UPDATE", "DELETE"} & set(grant.privileges)
            if writes and (grant.table in READ_MODEL_TABLES or grant.table == "*"):
                assert identity.name in ("sink-mysql", "replay"), identity.name
    gateway = {(p, g.table) for g in IDENTITIES["gateway"].mysql for p in g.privileges}
    assert ("SELECT", "*") in gateway
    assert {("INSERT", table) for table in ACCOUNT_TABLES} <= gateway


def test_redis_read_models_are_written_by_the_redis_sink_and_only_read_by_the_gateway():
    for key in READ_MODEL_KEYS:
        assert writable("sink-redis", key), key
        assert readable("gateway", key) and not writable("gateway", key), key
        assert not readable("notifications", key), key
    assert writable("sink-redis", keys.sink_offset("g", "t", 0))


def test_working_state_keys_belong_to_their_process():
    for key in GATEWAY_KEYS:
        assert writable("gateway", key) and not readable("sink-redis", key), key
    for key in NOTIFICATION_KEYS:
        assert writable("notifications", key) and not readable("gateway", key), key
    assert f"&{keys.APPLICATIONS_CHANGED}" in IDENTITIES["gateway"].redis
    assert f"&{keys.APPLICATIONS_CHANGED}" in IDENTITIES["sink-redis"].redis


def test_the_consumer_groups_are_the_settings_defaults():
    defaults = Settings.from_env({})
    assert IDENTITIES["acceptance"].kafka_groups() == {defaults.acceptance.consumer_group}
    assert IDENTITIES["analytics"].kafka_groups() == {defaults.analytics.topology.consumer_group}
    group = defaults.notifications.topology.consumer_group  # its retry stage's is f"{group}.retry", inside it
    assert IDENTITIES["notifications"].kafka_groups() == {group}
    assert IDENTITIES["sink-mysql"].kafka_groups() == {defaults.sinks.mysql_group}
    assert IDENTITIES["sink-redis"].kafka_groups() == {defaults.sinks.redis_group}


def test_each_process_defaults_to_its_own_identity_on_the_local_stack():
    settings = Settings.from_env({}, identity="gateway")
    assert settings.kafka.username == "gateway"
    assert settings.kafka.client_config()["sasl.password"] == local_password("gateway")
    assert settings.mysql.user == "jobstream_gateway"
    assert settings.redis.username == "gateway"
    assert "password" not in repr(settings.kafka) and local_password("gateway") not in repr(settings)


def test_production_refuses_development_credentials_for_the_stores_an_identity_uses():
    production = {
        "JOBSTREAM_ENV": "production",
        "JOBSTREAM_JWT_PRIVATE_KEY_FILE": "/k/private.pem",
        "JOBSTREAM_JWT_PUBLIC_KEY_FILE": "/k/public.pem",
    }
    with pytest.raises(SettingsError, match="JOBSTREAM_KAFKA_USERNAME"):
        Settings.from_env(production, identity="acceptance")
    kafka = {"JOBSTREAM_KAFKA_USERNAME": "acceptance", "JOBSTREAM_KAFKA_PASSWORD": "s3cret"}
    assert Settings.from_env({**production, **kafka}, identity="acceptance").kafka.password == "s3cret"
    with pytest.raises(SettingsError, match="JOBSTREAM_MYSQL_URL"):
        Settings.from_env({**production, **kafka}, identity="gateway")


def test_an_unknown_identity_is_refused():
    with pytest.raises(SettingsError, match="identity"):
        Settings.from_env({}, identity="intruder")
