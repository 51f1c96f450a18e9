"""Each service identity can do what its code needs and nothing else, on the real local Kafka, MariaDB and Redis.

The gateway is the example the issue names: it writes events but may not decide them, reads the read models but
may not write them. Unauthenticated clients are refused by all three servers.
"""

from __future__ import annotations

import re
import uuid

import pymysql
import pytest
import redis
from confluent_kafka import KafkaError, KafkaException, Producer

from jobstream.identities import IDENTITIES
from jobstream.settings import Settings
from schemas.topics import APPLICATION_CREATED, APPLICATION_DECIDED
from stack.identities import EVERY_ACL, acl_bindings, mysql_identities, principal
from state.migrate import connect

GATEWAY = Settings.from_env(identity="gateway")
SINK_MYSQL = Settings.from_env(identity="sink-mysql")
REPLAY = Settings.from_env(identity="replay")


def _produce(config: dict[str, str], topic: str) -> KafkaError | None:
    """Produce one record and flush; the delivery error, or None when the broker took it."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**config, "log_level": 0, "message.timeout.ms": 10_000, "enable.idempotence": True})
    producer.produce(topic, key=b"identity-test", value=b"not an event", on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(15)
    assert outcome, "no delivery report within 15 s"
    return outcome[0]


def _metadata(config: dict[str, str]) -> None:
    Producer({**config, "log_level": 0}).list_topics(timeout=5)


def test_kafka_refuses_a_client_that_does_not_authenticate(settings):
    _metadata(settings.kafka.client_config())  # the broker answers whoever logs in
    with pytest.raises(KafkaException):
        _metadata({"bootstrap.servers": settings.kafka.bootstrap, "socket.timeout.ms": 3000})


def test_kafka_refuses_a_wrong_password(settings):
    _metadata(GATEWAY.kafka.client_config())
    with pytest.raises(KafkaException):
        _metadata({**GATEWAY.kafka.client_config(), "sasl.password": "not-the-password"})


def test_the_gateway_may_write_applications_but_not_decide_them():
    created = _produce(GATEWAY.kafka.client_config(), APPLICATION_CREATED)
    assert created is None
    decided = _produce(GATEWAY.kafka.client_config(), APPLICATION_DECIDED)
    assert decided is not None and decided.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_brokers_acls_are_exactly_the_catalogs(kafka_admin):
    on_broker = set(kafka_admin.describe_acls(EVERY_ACL, request_timeout=10).result())
    catalog = set().union(*(acl_bindings(identity) for identity in IDENTITIES.values()))
    assert on_broker == catalog
    assert not any(binding.principal == principal(IDENTITIES["admin"]) for binding in on_broker)


def test_mariadb_refuses_a_client_without_the_password(settings):
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host=settings.mysql.host, port=settings.mysql.port, user="jobstream_gateway", password="")
    assert refused.value.args[0] == 1045  # access denied


def test_the_gateway_reads_the_read_models_but_cannot_write_them():
    with connect(GATEWAY.mysql) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM applications")
        assert cursor.fetchone()[0] >= 0
        cursor.execute("SELECT COUNT(*) FROM users")
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cursor.execute("DELETE FROM applications WHERE application_id = %s", (str(uuid.uuid4()),))
        assert denied.value.args[0] == 1142  # command denied to user for table
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cursor.execute("CREATE TABLE applications_shadow LIKE applications")
        assert denied.value.args[0] == 1142


def test_only_replay_may_create_and_drop_shadow_tables():
    table = f"identity_shadow_{uuid.uuid4().hex[:8]}"
    with connect(SINK_MYSQL.mysql) as connection, connection.cursor() as cursor:
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cursor.execute(f"CREATE TABLE {table} LIKE jobs")
        assert denied.value.args[0] == 1142
    with connect(REPLAY.mysql) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} LIKE jobs")
        cursor.execute(f"RENAME TABLE {table} TO {table}_swapped")
        cursor.execute(f"DROP TABLE {table}_swapped")


def test_each_identitys_mariadb_grants_are_the_catalogs():
    grant_line = re.compile(r"^GRANT (.+) ON `([^`]+)`\.(\*|`[^`]+`) TO ")
    for identity in mysql_identities():
        own = Settings.from_env(identity=identity.name)
        with connect(own.mysql) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW GRANTS")
            granted = set()
            for (line,) in cursor.fetchall():
                match = grant_line.match(line)
                if match is None or match.group(1) == "USAGE":
                    continue
                assert match.group(2) == own.mysql.database, line
                table = match.group(3).strip("`")
                granted.update((privilege.strip(), table) for privilege in match.group(1).split(","))
        assert granted == {(p, grant.table) for grant in identity.mysql for p in grant.privileges}, identity.name


def test_identities_granted_nothing_in_mariadb_have_no_account_there():
    without = [i for i in IDENTITIES.values() if not i.superuser and i not in mysql_identities()]
    assert {i.name for i in without} >= {"acceptance", "analytics", "notifications", "sink-redis"}
    for identity in without:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            connect(Settings.from_env(identity=identity.name).mysql)
        assert refused.value.args[0] in (1045, 1698), identity.name  # access denied (no such user)


def test_redis_refuses_a_client_that_does_not_authenticate(settings):
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port, socket_timeout=3)
    with pytest.raises(redis.AuthenticationError), client:
        client.get("jobstream:job:any")


def test_the_gateway_reads_redis_read_models_but_cannot_write_them(redis_client):
    key = f"jobstream:application:{uuid.uuid4()}"
    redis_client.hset(key, "status", "accepted")
    gateway = redis.Redis.from_url(GATEWAY.redis_url, socket_timeout=3)
    with gateway:
        assert gateway.hget(key, "status") == b"accepted"
        with pytest.raises(redis.exceptions.NoPermissionError):
            gateway.hset(key, "status", "rejected")
        with pytest.raises(redis.exceptions.NoPermissionError):
            gateway.flushdb()
        own = f"jobstream:gateway:pending:{uuid.uuid4()}"
        assert gateway.set(own, "x", ex=60)
    redis_client.delete(key, own)


@pytest.mark.parametrize(
    ("user", "command", "allowed"),
    [
        ("gateway", ["GET", "jobstream:job:1"], True),
        ("gateway", ["EVALSHA", "0" * 40, "1", "jobstream:ratelimit:ip"], True),
        ("gateway", ["PUBLISH", "jobstream:applications:changed", "forged"], False),
        ("gateway", ["DEL", "jobstream:application:1"], False),
        ("gateway", ["SCRIPT", "FLUSH"], False),
        ("gateway", ["FUNCTION", "FLUSH"], False),
        ("gateway", ["CONFIG", "SET", "maxmemory", "1"], False),
        ("sink-redis", ["PUBLISH", "jobstream:applications:changed", "id"], True),
        ("sink-redis", ["GET", "jobstream:auth:revoked:jti:1"], False),
        ("notifications", ["SET", "jobstream:notifications:delivered:1", "1"], True),
        ("notifications", ["HGET", "jobstream:job:1", "title"], False),
        ("notifications", ["KEYS", "*"], False),
    ],
)
def test_redis_allows_each_identity_its_own_commands_and_keys_only(redis_client, user, command, allowed):
    answer = redis_client.execute_command("ACL", "DRYRUN", user, *command)
    assert (answer == b"OK") is allowed, answer
