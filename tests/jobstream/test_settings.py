import pytest

from jobstream.errors import SettingsError
from jobstream.settings import PROJECT_ROOT, Settings, redact_url

pytestmark = pytest.mark.unit

# Production takes no development password: every store the (default, admin) identity uses gets its own.
PRODUCTION = {
    "JOBSTREAM_ENV": "production",
    "JOBSTREAM_KAFKA_USERNAME": "admin",
    "JOBSTREAM_KAFKA_PASSWORD": "kafka-secret",
    "JOBSTREAM_MYSQL_URL": "mysql://jobstream:mysql-secret@db:3306/jobstream",
    "JOBSTREAM_REDIS_URL": "redis://admin:redis-secret@cache:6379/0",
}


def test_defaults_point_at_the_local_stack():
    settings = Settings.from_env({})
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert (settings.mysql.host, settings.mysql.port, settings.mysql.database) == (
        "127.0.0.1",
        3306,
        "jobstream",
    )
    assert (settings.redis.host, settings.redis.port, settings.redis.db) == ("127.0.0.1", 6379, 0)
    assert settings.local_dir == PROJECT_ROOT / ".local"


def test_urls_are_parsed_into_addresses():
    settings = Settings.from_env(
        {
            "JOBSTREAM_MYSQL_URL": "mysql://app:p%40ss@db.internal:3307/reads",
            "JOBSTREAM_REDIS_URL": "redis://:secret@cache:6380/2",
            "JOBSTREAM_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        }
    )
    assert settings.mysql.password == "p@ss"
    assert (settings.mysql.host, settings.mysql.port, settings.mysql.database) == (
        "db.internal",
        3307,
        "reads",
    )
    assert (settings.redis.password, settings.redis.port, settings.redis.db) == ("secret", 6380, 2)
    assert settings.kafka.bootstrap == "k1:9092,k2:9092"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("JOBSTREAM_KAFKA_BOOTSTRAP", "localhost", "host:port"),
        ("JOBSTREAM_KAFKA_BOOTSTRAP", "localhost:ninety", "port must be a number"),
        ("JOBSTREAM_MYSQL_URL", "postgres://u:p@h/db", "mysql://user:password@host:port/database"),
        ("JOBSTREAM_MYSQL_URL", "mysql://u:p@h:3306/", "database name is missing"),
        ("JOBSTREAM_MYSQL_URL", "mysql://u:p@h:3306/db;drop", "letters, digits and _"),
        ("JOBSTREAM_MYSQL_URL", "mysql://u:p@h:port/db", "port is not a number"),
        ("JOBSTREAM_REDIS_URL", "redis://cache:6379/zero", "db must be a number"),
        ("JOBSTREAM_REDIS_URL", "http://cache:6379/0", "redis://"),
        ("JOBSTREAM_TOPIC_REPLICATION_FACTOR", "three", "expected an integer"),
        ("JOBSTREAM_TOPIC_REPLICATION_FACTOR", "0", "at least 1"),
        ("JOBSTREAM_LOCAL_KAFKA_BROKERS", "12", "at most 9"),
        ("JOBSTREAM_REDIS_URL", "  ", "must not be empty"),
    ],
)
def test_a_bad_value_fails_naming_its_variable(variable, value, says):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert says in str(raised.value)


def test_min_insync_replicas_cannot_exceed_the_replication_factor():
    with pytest.raises(SettingsError, match="JOBSTREAM_TOPIC_MIN_INSYNC_REPLICAS"):
        Settings.from_env({"JOBSTREAM_TOPIC_REPLICATION_FACTOR": "3", "JOBSTREAM_TOPIC_MIN_INSYNC_REPLICAS": "4"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JOBSTREAM_MYSQL_URL", "postgres://app:hunter2secret@db/reads"),
        ("JOBSTREAM_MYSQL_URL", "mysql://app:hunter2secret@db:3306/"),
        ("JOBSTREAM_MYSQL_URL", "mysql://app:hunter2secret@db:port/reads"),
        ("JOBSTREAM_MYSQL_URL", "mysql://app:hunter2secret@db/reads;drop"),
        ("JOBSTREAM_MYSQL_URL", "mysql://app:hunter2/secret@db/reads"),
        ("JOBSTREAM_MYSQL_URL", "mysql://app:hunter2@secret@[db/reads"),
        ("JOBSTREAM_REDIS_URL", "redis://:hunter2secret@cache:6379/zero"),
        ("JOBSTREAM_REDIS_URL", "rediss://user:hunter2secret@cache:6379/0"),
        ("JOBSTREAM_SMS_WEBHOOK_URL", "ftp://sms:hunter2secret@provider/send"),
    ],
)
def test_a_bad_url_is_named_without_echoing_its_password(variable, value):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})

    message = str(raised.value)
    assert raised.value.variable == variable and message.startswith(f"{variable}: ")
    assert "hunter2" not in message and "secret" not in message
    assert ":***@" in message


def test_redact_url_keeps_everything_but_the_password():
    assert redact_url("mysql://app:p%40ss@db.internal:3307/reads") == "mysql://app:***@db.internal:3307/reads"
    assert redact_url("redis://:secret@cache:6380/2") == "redis://:***@cache:6380/2"
    assert redact_url("mysql://app@db/reads") == "mysql://app@db/reads"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_production_refuses_to_generate_dev_jwt_keys():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(PRODUCTION)

    assert raised.value.variable == "JOBSTREAM_JWT_PRIVATE_KEY_FILE"
    assert "JOBSTREAM_ENV=production" in str(raised.value)


def test_production_takes_configured_jwt_keys_and_development_generates_them(tmp_path):
    keys = {
        "JOBSTREAM_JWT_PRIVATE_KEY_FILE": str(tmp_path / "private.pem"),
        "JOBSTREAM_JWT_PUBLIC_KEY_FILE": str(tmp_path / "public.pem"),
    }

    production = Settings.from_env({**PRODUCTION, **keys})
    development = Settings.from_env({})

    assert (production.environment, production.accounts.jwt_dev_keys) == ("production", False)
    assert (development.environment, development.accounts.jwt_dev_keys) == ("development", True)
    with pytest.raises(SettingsError, match="JOBSTREAM_ENV: expected one of development, production"):
        Settings.from_env({"JOBSTREAM_ENV": "prod"})


def test_gateway_edge_defaults_and_trusted_proxies_are_parsed_and_normalized():
    defaults = Settings.from_env({}).gateway
    custom = Settings.from_env(
        {
            "JOBSTREAM_GATEWAY_TRUSTED_PROXIES": " 127.0.0.1, 10.1.2.3/8 ,::1",
            "JOBSTREAM_GATEWAY_MAX_INFLIGHT": "10",
            "JOBSTREAM_GATEWAY_MAX_INFLIGHT_PER_CLIENT_SHARE": "0.25",
        }
    ).gateway

    assert defaults.trusted_proxies == ()
    assert (defaults.body_timeout_ms, defaults.max_queued_hashes) == (10_000, 64)
    assert (defaults.metrics_host, defaults.metrics_port) == ("127.0.0.1", 9464)
    assert (defaults.max_inflight, defaults.max_inflight_per_client) == (64, 16)
    assert custom.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert custom.max_inflight_per_client == 3  # ceil(0.25 x 10)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("JOBSTREAM_GATEWAY_TRUSTED_PROXIES", "127.0.0.1,proxy.internal", "'proxy.internal'"),
        ("JOBSTREAM_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33", "CIDR networks"),
        ("JOBSTREAM_GATEWAY_TRUSTED_PROXIES", "127.0.0.1,,::1", "got ''"),
        ("JOBSTREAM_GATEWAY_MAX_INFLIGHT_PER_CLIENT_SHARE", "0", "above 0 and at most 1"),
        ("JOBSTREAM_GATEWAY_MAX_INFLIGHT_PER_CLIENT_SHARE", "1.5", "above 0 and at most 1"),
        ("JOBSTREAM_GATEWAY_MAX_INFLIGHT_PER_CLIENT_SHARE", "quarter", "above 0 and at most 1"),
        ("JOBSTREAM_GATEWAY_MAX_INFLIGHT_PER_CLIENT_SHARE", "nan", "above 0 and at most 1"),
        ("JOBSTREAM_GATEWAY_BODY_TIMEOUT_MS", "10", "at least 100"),
        ("JOBSTREAM_GATEWAY_METRICS_PORT", "70000", "at most 65535"),
    ],
)
def test_a_bad_gateway_edge_setting_fails_naming_its_variable(variable, value, says):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert says in str(raised.value)


def test_each_local_stack_has_its_own_folder_and_ports():
    dev, test, bench = (Settings.from_env({"JOBSTREAM_STACK": name}) for name in ("dev", "test", "bench"))
    local = PROJECT_ROOT / ".local"
    assert (dev.local_dir, test.local_dir, bench.local_dir) == (local, local / "stacks/test", local / "stacks/bench")
    addresses = {(s.kafka.bootstrap, s.mysql.port, s.redis.port) for s in (dev, test, bench)}
    assert addresses == {
        ("127.0.0.1:9092", 3306, 6379),
        ("127.0.0.1:19092", 13306, 16379),
        ("127.0.0.1:24092", 23306, 26379),
    }
    assert dev.jar_cache == test.jar_cache == bench.jar_cache == local / "jars"
    assert test.acceptance.state_dir == local / "stacks/test/state/acceptance"


def test_an_unknown_stack_names_its_variable():
    with pytest.raises(SettingsError, match="JOBSTREAM_STACK: expected one of dev, test, bench"):
        Settings.from_env({"JOBSTREAM_STACK": "prod"})


def test_cors_origins_are_normalized_as_browsers_send_them():
    settings = Settings.from_env(
        {"JOBSTREAM_GATEWAY_CORS_ORIGINS": "https://App.Example.com, http://127.0.0.1:8080,http://[::1]:3000"}
    )
    assert settings.gateway.cors_origins == ("https://app.example.com", "http://127.0.0.1:8080", "http://[::1]:3000")


def test_the_local_front_end_is_the_only_default_cors_origin_and_production_has_none():
    local = Settings.from_env({"JOBSTREAM_WEB_PORT": "8181"})
    production = Settings.from_env(
        {
            **PRODUCTION,
            "JOBSTREAM_JWT_PRIVATE_KEY_FILE": "/keys/private.pem",
            "JOBSTREAM_JWT_PUBLIC_KEY_FILE": "/keys/public.pem",
        }
    )

    assert local.gateway.cors_origins == ("http://127.0.0.1:8181", "http://localhost:8181")
    assert local.web.api_url == f"http://127.0.0.1:{local.gateway.port}"
    assert production.gateway.cors_origins == ()


@pytest.mark.parametrize(
    "origin", ["*", "https://*.example.com", "app.example.com", "https://a.example/path", "ftp://a"]
)
def test_a_cors_origin_that_is_not_exactly_one_origin_is_refused_naming_the_variable(origin):
    with pytest.raises(SettingsError, match="JOBSTREAM_GATEWAY_CORS_ORIGINS: expected comma-separated origins"):
        Settings.from_env({"JOBSTREAM_GATEWAY_CORS_ORIGINS": origin})


def test_no_secret_shows_in_the_settings_repr():
    settings = Settings.from_env(
        {
            "JOBSTREAM_MYSQL_URL": "mysql://app:hunter2secret@db:3306/reads",
            "JOBSTREAM_REDIS_URL": "redis://:hunter2secret@cache:6379/0",
        }
    )
    assert settings.mysql.password == settings.redis.password == "hunter2secret"
    assert "hunter2secret" not in repr(settings)
    assert "db" in repr(settings.mysql) and "cache" in repr(settings.redis)
