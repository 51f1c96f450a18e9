"""One typed settings object, read from the environment once, at the edge of each process.

Every variable is prefixed ``JOBSTREAM_``; each has a default that points at the local stack.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jobstream.errors import SettingsError
from jobstream.identities import IDENTITIES, Identity, local_password

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True)
class LocalStack:
    """One local stack's folder (under .local/) and the ports of its Kafka, MariaDB and Redis."""

    folder: str
    kafka_port: int
    mysql_port: int
    redis_port: int


# JOBSTREAM_STACK picks the defaults: `make run` uses "dev", `make test` "test" and `python -m benchmarks` "bench".
# Each is its own cluster directory, database server and Redis, so tests and benchmarks never leave events, rows or
# keys in the platform `make run` shows, and the three can run side by side.
LOCAL_STACKS = {
    "dev": LocalStack(".", 9092, 3306, 6379),
    "test": LocalStack("stacks/test", 19092, 13306, 16379),
    "bench": LocalStack("stacks/bench", 24092, 23306, 26379),
}
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


# Secrets are left out of every repr, so a logged or printed settings object never shows one.
@dataclass(frozen=True)
class MySQLAddress:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    db: int
    password: str | None = field(repr=False)
    # An ACL user (Redis 6+); None authenticates as `default`.
    username: str | None = None


KAFKA_SECURITY_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


@dataclass(frozen=True)
class KafkaClientSettings:
    """How this process reaches Kafka: the bootstrap servers and its own SASL/SCRAM identity."""

    bootstrap: str
    security_protocol: str
    sasl_mechanism: str
    username: str
    password: str = field(repr=False)
    # The CA that signed the brokers' certificates, for SASL_SSL (a Strimzi cluster's CA); None trusts the system's.
    ssl_ca_location: str | None = None

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings every Producer, Consumer and AdminClient of this process starts from."""
        config = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }
        if self.ssl_ca_location is not None:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config

    def environment(self) -> dict[str, str]:
        """The JOBSTREAM_KAFKA_* variables that make a child process reach Kafka as these settings do.

        Tests and benchmarks run stages in consumer groups of their own, which the service identities' ACLs do not
        grant: such a process authenticates as its parent does (on the local stack, the superuser `admin`).
        """
        env = {
            "JOBSTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "JOBSTREAM_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "JOBSTREAM_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "JOBSTREAM_KAFKA_USERNAME": self.username,
            "JOBSTREAM_KAFKA_PASSWORD": self.password,
        }
        if self.ssl_ca_location is not None:
            env["JOBSTREAM_KAFKA_SSL_CA_LOCATION"] = self.ssl_ca_location
        return env


@dataclass(frozen=True)
class NotificationSettings:
    """The notification topology: its process (group, state, metrics port), providers and retry policy (ms)."""

    topology: TopologySettings
    smtp_host: str
    smtp_port: int
    sender: str
    sms_webhook_url: str
    push_webhook_url: str
    # Attempts in all before a notification goes to notification.dead_letter.
    max_attempts: int
    backoff_base_ms: int
    backoff_cap_ms: int
    # The most one message may hold its consumer (attempts, waits, provider timeouts) before it is re-queued.
    inline_budget_ms: int
    provider_timeout_ms: int
    dedup_ttl_s: int

    @property
    def retry_metrics_port(self) -> int:
        """The retry stage's metrics port: the fresh stage's + 1, so one setting places both (0: neither serves)."""
        port = self.topology.metrics_port
        return port + 1 if port else 0


@dataclass(frozen=True)
class TopologySettings:
    """One stream topology process: its consumer group, local state, metrics port and transaction timing."""

    consumer_group: str
    state_dir: Path
    # 0 serves no metrics (several instances on one host need distinct ports).
    metrics_port: int
    commit_interval_ms: int
    # Set per instance (e.g. the pod name) for static group membership and a stable transactional.id: a restarted
    # instance takes its partitions back at once and fences its dead predecessor's open transaction.
    instance_id: str | None
    session_timeout_ms: int
    transaction_timeout_ms: int
    # A running topology that has not polled Kafka for this long is stuck in a client call and exits
    # (jobstream/watchdog.py); its supervisor starts a fresh one.
    stall_timeout_ms: int


@dataclass(frozen=True)
class AnalyticsSettings:
    topology: TopologySettings
    # How late, in event time, an event may arrive and still be counted in its window.
    job_window_grace_ms: int
    company_window_grace_ms: int


@dataclass(frozen=True)
class AccountSettings:
    """Accounts and tokens: JWT keys and lifetimes, the profile cache, login limits, invitations."""

    # Ed25519 keys in PEM. With neither JOBSTREAM_JWT_*_KEY_FILE set, a dev pair is generated once into
    # <local_dir>/jwt/ (jwt_dev_keys); production must set both, so every gateway replica signs with one key.
    jwt_private_key_file: Path
    jwt_public_key_file: Path
    jwt_dev_keys: bool
    jwt_issuer: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    profile_cache_ttl_s: int
    login_window_s: int
    login_max_attempts_per_account: int
    login_max_attempts_per_ip: int
    # How long an invitation's token may be used to register, and how many invitations one inviter may send:
    # bursts of `invite_burst`, refilled at `invite_rate_per_min`.
    invitation_ttl_s: int
    invite_rate_per_min: int
    invite_burst: int


@dataclass(frozen=True)
class OutboxSettings:
    """The outbox relay: how many rows it publishes per round, how often it polls, how long one delivery may take."""

    batch_size: int
    poll_interval_ms: int
    delivery_timeout_ms: int
    # Prometheus metrics of the relay (0 serves none).
    metrics_port: int


@dataclass(frozen=True)
class GatewaySettings:
    """The HTTP gateway: where it listens and the bounds that keep it answering under load (times in ms)."""

    host: str
    port: int
    # The longest a write waits for Kafka's acknowledgement before the client gets 503 + Retry-After.
    produce_timeout_ms: int
    # Requests served at once (kept small: they share one event loop); up to `max_queued` more wait in arrival
    # order, each at most `queue_wait_ms`, and past either bound the client gets 503 + Retry-After at once.
    max_inflight: int
    max_queued: int
    queue_wait_ms: int
    max_body_bytes: int
    retry_after_s: int
    idempotency_ttl_s: int
    user_rate_per_min: int
    user_burst: int
    ip_rate_per_min: int
    ip_burst: int
    mysql_pool_size: int
    redis_timeout_ms: int
    # Consecutive failures that open a circuit breaker, and how long it stays open before one trial call.
    breaker_failures: int
    breaker_reset_ms: int
    # A request body must arrive whole within this (from the end of its headers), or the client gets 408; it is read
    # before admission, so slow senders hold no admission slot.
    body_timeout_ms: int
    # The share of `max_inflight` one client address may hold at once; its further requests wait in the queue.
    max_inflight_per_client_share: float
    # Peers (IPs or CIDRs) whose X-Forwarded-For is believed; empty believes none.
    trusted_proxies: tuple[str, ...]
    # Browser origins (scheme://host[:port]) allowed to call the API cross-origin; empty allows none.
    cors_origins: tuple[str, ...]
    # Password hashes (argon2) waiting for a thread, past which registration and login answer 503.
    max_queued_hashes: int
    # Prometheus metrics on their own listener, off the public port; port 0 serves none.
    metrics_host: str
    metrics_port: int

    @property
    def max_inflight_per_client(self) -> int:
        return math.ceil(self.max_inflight_per_client_share * self.max_inflight)


@dataclass(frozen=True)
class SinkSettings:
    """The read-model sinks: consumer groups, batch bounds, the MySQL pool cap and the retry policy."""

    mysql_group: str
    redis_group: str
    commit_interval_ms: int
    # A checkpoint (one batch per partition) closes after this many messages, bounding a batch's memory.
    batch_max_messages: int
    # Hard cap on MySQL connections per sink process; writers beyond it wait for a free one.
    mysql_pool_size: int
    # MySQL and Redis connect, read and write timeout: a store slower than this counts as down (backpressure).
    timeout_s: int
    lock_wait_timeout_s: int
    max_attempts: int
    backoff_base_ms: int
    backoff_cap_ms: int
    # How long consumption pauses when MySQL or Redis cannot take a batch.
    backpressure_s: int
    # How soon the group notices a sink that died without leaving (kill -9) and gives its partitions to another.
    session_timeout_ms: int
    # Prometheus metrics of each sink process (0 serves none; several instances on one host need distinct ports).
    mysql_metrics_port: int
    redis_metrics_port: int


@dataclass(frozen=True)
class SupervisorSettings:
    """`python -m stack.supervisor`: its metrics port and restart policy."""

    # 0 serves no metrics.
    metrics_port: int
    # Restart delays double from base to cap; a process up stable_after_s gets the base delay again.
    backoff_base_ms: int
    backoff_cap_ms: int
    stable_after_s: int
    # A process that exits this many times within the window is marked failed and not restarted.
    crash_loop_exits: int
    crash_loop_window_s: int


@dataclass(frozen=True)
class PrometheusSettings:
    """`python -m stack.prometheus`: the local Prometheus that scrapes every process and evaluates the alert rules."""

    # Its web UI and HTTP API, on 127.0.0.1.
    port: int
    # How often each process is scraped and the rules evaluated (seconds).
    scrape_interval_s: int


@dataclass(frozen=True)
class WebSettings:
    """`python -m web`: where the browser front end is served, and the public API it calls."""

    host: str
    port: int
    # The gateway's public URL as a browser reaches it; the front end calls nothing else.
    api_url: str

    @property
    def origins(self) -> tuple[str, ...]:
        """What a browser sends as Origin for this front end (both names of loopback when it is served there)."""
        if self.host in ("127.0.0.1", "localhost"):
            return (f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}")
        return (f"http://{self.host}:{self.port}",)


@dataclass(frozen=True)
class Settings:
    # JOBSTREAM_ENV: "development" (the default) or "production", which refuses the conveniences of the local stack
    # (generated JWT keys, development passwords).
    environment: str
    # Which service identity this process is (jobstream/identities.py): its credentials' local defaults.
    identity: str
    kafka: KafkaClientSettings
    mysql: MySQLAddress
    mysql_url: str = field(repr=False)
    redis: RedisAddress
    redis_url: str = field(repr=False)
    # Replication factor and min.insync.replicas for catalog topics; 3 and 2 in production.
    topic_replication_factor: int
    topic_min_insync_replicas: int
    # Local stack only: which one (JOBSTREAM_STACK), where its servers keep their data, where the Kafka jars are
    # cached (shared by every stack), and how many Kafka brokers to run.
    stack: str
    local_dir: Path
    jar_cache: Path
    local_kafka_brokers: int
    notifications: NotificationSettings
    acceptance: TopologySettings
    analytics: AnalyticsSettings
    gateway: GatewaySettings
    accounts: AccountSettings
    outbox: OutboxSettings
    sinks: SinkSettings
    supervisor: SupervisorSettings
    prometheus: PrometheusSettings
    web: WebSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, identity: str = "admin") -> Settings:
        """Read and validate every setting; a bad value raises SettingsError naming its variable.

        `identity` is the service this process runs as (jobstream/identities.py); it picks the local stack's
        development credentials when JOBSTREAM_KAFKA_USERNAME/_PASSWORD, JOBSTREAM_MYSQL_URL and
        JOBSTREAM_REDIS_URL are not set. Production must set those of every store the identity uses.
        """
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        environment = reader.choice("JOBSTREAM_ENV", "development", ENVIRONMENTS)
        stack_name = reader.choice("JOBSTREAM_STACK", "dev", tuple(LOCAL_STACKS))
        stack = LOCAL_STACKS[stack_name]
        if identity not in IDENTITIES:
            raise SettingsError("identity", f"expected one of {', '.join(IDENTITIES)}, got {identity!r}")
        service = IDENTITIES[identity]
        if environment == "production":
            _require_credentials(reader, service)
        password = local_password(service.name)
        mysql_url = reader.text(
            "JOBSTREAM_MYSQL_URL",
            f"mysql://{service.mysql_user}:{password}@127.0.0.1:{stack.mysql_port}/jobstream",
        )
        redis_url = reader.text(
            "JOBSTREAM_REDIS_URL", f"redis://{service.name}:{password}@127.0.0.1:{stack.redis_port}/0"
        )
        gateway = _gateway_settings(reader)
        web = _web_settings(reader, gateway)
        if reader.optional_text("JOBSTREAM_GATEWAY_CORS_ORIGINS") is None and environment == "development":
            # Locally the front end is served on its own port, another origin: allow it, and only it.
            gateway = dataclasses.replace(gateway, cors_origins=web.origins)
        settings = cls(
            environment=environment,
            identity=service.name,
            kafka=KafkaClientSettings(
                bootstrap=_bootstrap(
                    "JOBSTREAM_KAFKA_BOOTSTRAP",
                    reader.text("JOBSTREAM_KAFKA_BOOTSTRAP", f"127.0.0.1:{stack.kafka_port}"),
                ),
                security_protocol=reader.choice(
                    "JOBSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", KAFKA_SECURITY_PROTOCOLS
                ),
                sasl_mechanism=reader.choice("JOBSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", KAFKA_SASL_MECHANISMS),
                username=reader.text("JOBSTREAM_KAFKA_USERNAME", service.name),
                password=reader.text("JOBSTREAM_KAFKA_PASSWORD", password),
                ssl_ca_location=reader.optional_text("JOBSTREAM_KAFKA_SSL_CA_LOCATION"),
            ),
            mysql=_mysql_address("JOBSTREAM_MYSQL_URL", mysql_url),
            mysql_url=mysql_url,
            redis=_redis_address("JOBSTREAM_REDIS_URL", redis_url),
            redis_url=redis_url,
            topic_replication_factor=reader.integer("JOBSTREAM_TOPIC_REPLICATION_FACTOR", 1, minimum=1),
            topic_min_insync_replicas=reader.integer("JOBSTREAM_TOPIC_MIN_INSYNC_REPLICAS", 1, minimum=1),
            stack=stack_name,
            local_dir=_local_dir(reader),
            jar_cache=Path(reader.text("JOBSTREAM_JAR_CACHE", str(PROJECT_ROOT / ".local" / "jars"))).resolve(),
            local_kafka_brokers=reader.integer("JOBSTREAM_LOCAL_KAFKA_BROKERS", 1, minimum=1, maximum=9),
            notifications=_notification_settings(reader),
            acceptance=_topology_settings(reader, "acceptance", metrics_port=9465),
            analytics=AnalyticsSettings(
                topology=_topology_settings(reader, "analytics", metrics_port=9466),
                job_window_grace_ms=reader.integer("JOBSTREAM_ANALYTICS_JOB_WINDOW_GRACE_MS", 10_000, minimum=0),
                company_window_grace_ms=reader.integer(
                    "JOBSTREAM_ANALYTICS_COMPANY_WINDOW_GRACE_MS", 60_000, minimum=0
                ),
            ),
            gateway=gateway,
            accounts=_account_settings(reader, environment),
            outbox=OutboxSettings(
                batch_size=reader.integer("JOBSTREAM_OUTBOX_BATCH_SIZE", 500, minimum=1, maximum=10_000),
                poll_interval_ms=reader.integer("JOBSTREAM_OUTBOX_POLL_INTERVAL_MS", 200, minimum=10),
                delivery_timeout_ms=reader.integer("JOBSTREAM_OUTBOX_DELIVERY_TIMEOUT_MS", 10_000, minimum=1_000),
                metrics_port=reader.integer("JOBSTREAM_OUTBOX_METRICS_PORT", 9473, minimum=0, maximum=65535),
            ),
            sinks=_sink_settings(reader),
            supervisor=_supervisor_settings(reader),
            prometheus=PrometheusSettings(
                port=reader.integer("JOBSTREAM_PROMETHEUS_PORT", 9090, minimum=1, maximum=65535),
                scrape_interval_s=reader.integer("JOBSTREAM_PROMETHEUS_SCRAPE_INTERVAL_S", 15, minimum=1, maximum=300),
            ),
            web=web,
        )
        if settings.topic_min_insync_replicas > settings.topic_replication_factor:
            raise SettingsError(
                "JOBSTREAM_TOPIC_MIN_INSYNC_REPLICAS",
                f"must not exceed JOBSTREAM_TOPIC_REPLICATION_FACTOR ({settings.topic_replication_factor}), "
                f"got {settings.topic_min_insync_replicas}",
            )
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, default).strip()
        if not value:
            raise SettingsError(name, "must not be empty")
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in options:
            raise SettingsError(name, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def fraction(self, name: str, default: float) -> float:
        """A number in (0, 1]."""
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(name, f"expected a number above 0 and at most 1, got {raw!r}") from None
        if not 0 < value <= 1:
            raise SettingsError(name, f"expected a number above 0 and at most 1, got {raw!r}")
        return value

    def optional_text(self, name: str) -> str | None:
        return self._env.get(name, "").strip() or None

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, f"expected an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = "" if maximum is None else f" and at most {maximum}"
            raise SettingsError(name, f"expected an integer of at least {minimum}{upper}, got {value}")
        return value


def _require_credentials(reader: _Reader, service: Identity) -> None:
    """In production every store the identity uses needs its credentials set: no development password is used."""
    needed = [
        *(["JOBSTREAM_KAFKA_USERNAME", "JOBSTREAM_KAFKA_PASSWORD"] if service.uses_kafka else []),
        *(["JOBSTREAM_MYSQL_URL"] if service.uses_mysql else []),
        *(["JOBSTREAM_REDIS_URL"] if service.uses_redis else []),
    ]
    for variable in needed:
        if reader.optional_text(variable) is None:
            raise SettingsError(
                variable,
                f"must be set when JOBSTREAM_ENV=production (the {service.name} identity's own credentials); "
                "development passwords are the local stack's only",
            )


def _local_dir(reader: _Reader) -> Path:
    stack = LOCAL_STACKS[reader.choice("JOBSTREAM_STACK", "dev", tuple(LOCAL_STACKS))]
    return Path(reader.text("JOBSTREAM_LOCAL_DIR", str(PROJECT_ROOT / ".local" / stack.folder))).resolve()


def _topology_settings(
    reader: _Reader, name: str, *, metrics_port: int, consumer_group: str | None = None
) -> TopologySettings:
    prefix = f"JOBSTREAM_{name.upper()}_"
    settings = TopologySettings(
        consumer_group=reader.text(f"{prefix}GROUP", consumer_group or f"jobstream-{name}"),
        state_dir=Path(reader.text(f"{prefix}STATE_DIR", str(_local_dir(reader) / "state" / name))).resolve(),
        metrics_port=reader.integer(f"{prefix}METRICS_PORT", metrics_port, minimum=0, maximum=65535),
        commit_interval_ms=reader.integer(f"{prefix}COMMIT_INTERVAL_MS", 1_000, minimum=10),
        instance_id=reader.optional_text(f"{prefix}INSTANCE_ID"),
        session_timeout_ms=reader.integer(f"{prefix}SESSION_TIMEOUT_MS", 10_000, minimum=1_000),
        transaction_timeout_ms=reader.integer(f"{prefix}TRANSACTION_TIMEOUT_MS", 10_000, minimum=1_000),
        # At least a few statistics intervals (5 s), the heartbeat the watchdog reads.
        stall_timeout_ms=reader.integer(f"{prefix}STALL_TIMEOUT_MS", 30_000, minimum=15_000),
    )
    if settings.transaction_timeout_ms <= settings.commit_interval_ms:
        raise SettingsError(
            f"{prefix}TRANSACTION_TIMEOUT_MS",
            f"must exceed {prefix}COMMIT_INTERVAL_MS ({settings.commit_interval_ms}): a transaction spans "
            f"one commit interval, got {settings.transaction_timeout_ms}",
        )
    return settings


def _gateway_settings(reader: _Reader) -> GatewaySettings:
    return GatewaySettings(
        host=reader.text("JOBSTREAM_GATEWAY_HOST", "127.0.0.1"),
        port=reader.integer("JOBSTREAM_GATEWAY_PORT", 8000, minimum=1, maximum=65535),
        produce_timeout_ms=reader.integer("JOBSTREAM_GATEWAY_PRODUCE_TIMEOUT_MS", 5_000, minimum=100),
        max_inflight=reader.integer("JOBSTREAM_GATEWAY_MAX_INFLIGHT", 64, minimum=1),
        max_queued=reader.integer("JOBSTREAM_GATEWAY_MAX_QUEUED", 2_048, minimum=0),
        queue_wait_ms=reader.integer("JOBSTREAM_GATEWAY_QUEUE_WAIT_MS", 5_000, minimum=1),
        max_body_bytes=reader.integer("JOBSTREAM_GATEWAY_MAX_BODY_BYTES", 65_536, minimum=1_024),
        retry_after_s=reader.integer("JOBSTREAM_GATEWAY_RETRY_AFTER_S", 1, minimum=1),
        idempotency_ttl_s=reader.integer("JOBSTREAM_GATEWAY_IDEMPOTENCY_TTL_S", 24 * 3600, minimum=60),
        user_rate_per_min=reader.integer("JOBSTREAM_GATEWAY_USER_RATE_PER_MIN", 300, minimum=1),
        user_burst=reader.integer("JOBSTREAM_GATEWAY_USER_BURST", 60, minimum=1),
        ip_rate_per_min=reader.integer("JOBSTREAM_GATEWAY_IP_RATE_PER_MIN", 6_000, minimum=1),
        ip_burst=reader.integer("JOBSTREAM_GATEWAY_IP_BURST", 1_000, minimum=1),
        mysql_pool_size=reader.integer("JOBSTREAM_GATEWAY_MYSQL_POOL_SIZE", 8, minimum=1, maximum=256),
        redis_timeout_ms=reader.integer("JOBSTREAM_GATEWAY_REDIS_TIMEOUT_MS", 500, minimum=10),
        breaker_failures=reader.integer("JOBSTREAM_GATEWAY_BREAKER_FAILURES", 5, minimum=1),
        breaker_reset_ms=reader.integer("JOBSTREAM_GATEWAY_BREAKER_RESET_MS", 5_000, minimum=100),
        body_timeout_ms=reader.integer("JOBSTREAM_GATEWAY_BODY_TIMEOUT_MS", 10_000, minimum=100),
        max_inflight_per_client_share=reader.fraction("JOBSTREAM_GATEWAY_MAX_INFLIGHT_PER_CLIENT_SHARE", 0.25),
        trusted_proxies=_networks(
            "JOBSTREAM_GATEWAY_TRUSTED_PROXIES", reader.optional_text("JOBSTREAM_GATEWAY_TRUSTED_PROXIES")
        ),
        cors_origins=_origins("JOBSTREAM_GATEWAY_CORS_ORIGINS", reader.optional_text("JOBSTREAM_GATEWAY_CORS_ORIGINS")),
        max_queued_hashes=reader.integer("JOBSTREAM_GATEWAY_MAX_QUEUED_HASHES", 64, minimum=0),
        metrics_host=reader.text("JOBSTREAM_GATEWAY_METRICS_HOST", "127.0.0.1"),
        metrics_port=reader.integer("JOBSTREAM_GATEWAY_METRICS_PORT", 9464, minimum=0, maximum=65535),
    )


def _web_settings(reader: _Reader, gateway: GatewaySettings) -> WebSettings:
    api_host = "127.0.0.1" if gateway.host in ("0.0.0.0", "::") else gateway.host
    return WebSettings(
        host=reader.text("JOBSTREAM_WEB_HOST", "127.0.0.1"),
        port=reader.integer("JOBSTREAM_WEB_PORT", 8080, minimum=1, maximum=65535),
        api_url=reader.text("JOBSTREAM_WEB_API_URL", f"http://{api_host}:{gateway.port}").rstrip("/"),
    )


def _account_settings(reader: _Reader, environment: str) -> AccountSettings:
    private_file = reader.optional_text("JOBSTREAM_JWT_PRIVATE_KEY_FILE")
    public_file = reader.optional_text("JOBSTREAM_JWT_PUBLIC_KEY_FILE")
    if environment == "production" and private_file is None:
        # Generated keys differ per machine: replicas would refuse each other's tokens, and a restart on a fresh
        # disk would log everyone out.
        raise SettingsError(
            "JOBSTREAM_JWT_PRIVATE_KEY_FILE",
            "must be set (with JOBSTREAM_JWT_PUBLIC_KEY_FILE) when JOBSTREAM_ENV=production; "
            "dev keys are generated only in development",
        )
    if (private_file is None) != (public_file is None):
        missing = "JOBSTREAM_JWT_PUBLIC_KEY_FILE" if public_file is None else "JOBSTREAM_JWT_PRIVATE_KEY_FILE"
        raise SettingsError(missing, "set both JWT key files, or neither for a generated dev key pair")
    jwt_dir = _local_dir(reader) / "jwt"
    settings = AccountSettings(
        jwt_private_key_file=Path(private_file).resolve() if private_file else jwt_dir / "private.pem",
        jwt_public_key_file=Path(public_file).resolve() if public_file else jwt_dir / "public.pem",
        jwt_dev_keys=private_file is None,
        jwt_issuer=reader.text("JOBSTREAM_JWT_ISSUER", "jobstream"),
        access_token_ttl_s=reader.integer("JOBSTREAM_ACCESS_TOKEN_TTL_S", 15 * 60, minimum=10, maximum=24 * 3600),
        refresh_token_ttl_s=reader.integer("JOBSTREAM_REFRESH_TOKEN_TTL_S", 14 * 24 * 3600, minimum=60),
        profile_cache_ttl_s=reader.integer("JOBSTREAM_PROFILE_CACHE_TTL_S", 30 * 60, minimum=1),
        login_window_s=reader.integer("JOBSTREAM_LOGIN_WINDOW_S", 300, minimum=1),
        login_max_attempts_per_account=reader.integer("JOBSTREAM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT", 5, minimum=1),
        login_max_attempts_per_ip=reader.integer("JOBSTREAM_LOGIN_MAX_ATTEMPTS_PER_IP", 50, minimum=1),
        invitation_ttl_s=reader.integer("JOBSTREAM_INVITATION_TTL_S", 7 * 24 * 3600, minimum=60),
        invite_rate_per_min=reader.integer("JOBSTREAM_INVITE_RATE_PER_MIN", 1, minimum=1),
        invite_burst=reader.integer("JOBSTREAM_INVITE_BURST", 20, minimum=1),
    )
    if settings.refresh_token_ttl_s <= settings.access_token_ttl_s:
        raise SettingsError(
            "JOBSTREAM_REFRESH_TOKEN_TTL_S",
            f"must exceed JOBSTREAM_ACCESS_TOKEN_TTL_S ({settings.access_token_ttl_s}), "
            f"got {settings.refresh_token_ttl_s}",
        )
    return settings


def _sink_settings(reader: _Reader) -> SinkSettings:
    settings = SinkSettings(
        mysql_group=reader.text("JOBSTREAM_SINKS_MYSQL_GROUP", "jobstream-sinks-mysql"),
        redis_group=reader.text("JOBSTREAM_SINKS_REDIS_GROUP", "jobstream-sinks-redis"),
        commit_interval_ms=reader.integer("JOBSTREAM_SINKS_COMMIT_INTERVAL_MS", 1_000, minimum=10),
        batch_max_messages=reader.integer("JOBSTREAM_SINKS_BATCH_MAX_MESSAGES", 5_000, minimum=1),
        mysql_pool_size=reader.integer("JOBSTREAM_SINKS_MYSQL_POOL_SIZE", 4, minimum=1, maximum=100),
        timeout_s=reader.integer("JOBSTREAM_SINKS_TIMEOUT_S", 10, minimum=1),
        lock_wait_timeout_s=reader.integer("JOBSTREAM_SINKS_LOCK_WAIT_TIMEOUT_S", 5, minimum=1),
        max_attempts=reader.integer("JOBSTREAM_SINKS_MAX_ATTEMPTS", 5, minimum=1, maximum=50),
        backoff_base_ms=reader.integer("JOBSTREAM_SINKS_BACKOFF_BASE_MS", 50, minimum=1),
        backoff_cap_ms=reader.integer("JOBSTREAM_SINKS_BACKOFF_CAP_MS", 2_000, minimum=1),
        backpressure_s=reader.integer("JOBSTREAM_SINKS_BACKPRESSURE_S", 10, minimum=1),
        session_timeout_ms=reader.integer("JOBSTREAM_SINKS_SESSION_TIMEOUT_MS", 10_000, minimum=1_000),
        mysql_metrics_port=reader.integer("JOBSTREAM_SINKS_MYSQL_METRICS_PORT", 9471, minimum=0, maximum=65535),
        redis_metrics_port=reader.integer("JOBSTREAM_SINKS_REDIS_METRICS_PORT", 9472, minimum=0, maximum=65535),
    )
    if settings.backoff_cap_ms < settings.backoff_base_ms:
        raise SettingsError(
            "JOBSTREAM_SINKS_BACKOFF_CAP_MS",
            f"must be at least JOBSTREAM_SINKS_BACKOFF_BASE_MS ({settings.backoff_base_ms}), "
            f"got {settings.backoff_cap_ms}",
        )
    return settings


def _supervisor_settings(reader: _Reader) -> SupervisorSettings:
    settings = SupervisorSettings(
        metrics_port=reader.integer("JOBSTREAM_SUPERVISOR_METRICS_PORT", 9470, minimum=0, maximum=65535),
        backoff_base_ms=reader.integer("JOBSTREAM_SUPERVISOR_BACKOFF_BASE_MS", 1_000, minimum=1),
        backoff_cap_ms=reader.integer("JOBSTREAM_SUPERVISOR_BACKOFF_CAP_MS", 30_000, minimum=1),
        stable_after_s=reader.integer("JOBSTREAM_SUPERVISOR_STABLE_AFTER_S", 60, minimum=1),
        crash_loop_exits=reader.integer("JOBSTREAM_SUPERVISOR_CRASH_LOOP_EXITS", 5, minimum=1),
        crash_loop_window_s=reader.integer("JOBSTREAM_SUPERVISOR_CRASH_LOOP_WINDOW_S", 120, minimum=1),
    )
    if settings.backoff_cap_ms < settings.backoff_base_ms:
        raise SettingsError(
            "JOBSTREAM_SUPERVISOR_BACKOFF_CAP_MS",
            f"must be at least JOBSTREAM_SUPERVISOR_BACKOFF_BASE_MS ({settings.backoff_base_ms}), "
            f"got {settings.backoff_cap_ms}",
        )
    return settings


def _notification_settings(reader: _Reader) -> NotificationSettings:
    settings = NotificationSettings(
        topology=_topology_settings(reader, "notifications", metrics_port=9467, consumer_group="notifications"),
        smtp_host=reader.text("JOBSTREAM_SMTP_HOST", "127.0.0.1"),
        smtp_port=reader.integer("JOBSTREAM_SMTP_PORT", 2525, minimum=1, maximum=65535),
        sender=reader.text("JOBSTREAM_NOTIFICATIONS_SENDER", "Jobstream <no-reply@jobstream.local>"),
        sms_webhook_url=_http_url(
            "JOBSTREAM_SMS_WEBHOOK_URL", reader.text("JOBSTREAM_SMS_WEBHOOK_URL", "http://127.0.0.1:8026/sms")
        ),
        push_webhook_url=_http_url(
            "JOBSTREAM_PUSH_WEBHOOK_URL", reader.text("JOBSTREAM_PUSH_WEBHOOK_URL", "http://127.0.0.1:8026/push")
        ),
        max_attempts=reader.integer("JOBSTREAM_NOTIFICATIONS_MAX_ATTEMPTS", 5, minimum=1, maximum=50),
        backoff_base_ms=reader.integer("JOBSTREAM_NOTIFICATIONS_BACKOFF_BASE_MS", 500, minimum=1),
        backoff_cap_ms=reader.integer("JOBSTREAM_NOTIFICATIONS_BACKOFF_CAP_MS", 60_000, minimum=1),
        inline_budget_ms=reader.integer("JOBSTREAM_NOTIFICATIONS_INLINE_BUDGET_MS", 2_000, minimum=1),
        provider_timeout_ms=reader.integer("JOBSTREAM_NOTIFICATIONS_PROVIDER_TIMEOUT_MS", 5_000, minimum=1),
        dedup_ttl_s=reader.integer("JOBSTREAM_NOTIFICATIONS_DEDUP_TTL_S", 14 * 24 * 3600, minimum=1),
    )
    if settings.backoff_cap_ms < settings.backoff_base_ms:
        raise SettingsError(
            "JOBSTREAM_NOTIFICATIONS_BACKOFF_CAP_MS",
            f"must be at least JOBSTREAM_NOTIFICATIONS_BACKOFF_BASE_MS ({settings.backoff_base_ms}), "
            f"got {settings.backoff_cap_ms}",
        )
    return settings


def redact_url(url: str) -> str:
    """`url` with the password of its user info replaced by ***, for messages: mysql://user:***@host/db.

    Works on malformed URLs too (they are the ones error messages echo): everything between the first ':' of the
    user info and the last '@' before the host goes.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"


def _networks(variable: str, raw: str | None) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, each checked (uvicorn would silently treat a typo as a name)."""
    if raw is None:
        return ()
    entries = []
    for entry in (part.strip() for part in raw.split(",")):
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            expected = "expected comma-separated IP addresses or CIDR networks"
            raise SettingsError(variable, f"{expected}, got {entry!r}") from None
        # Normalized: uvicorn takes exact networks only, and would ignore 10.1.2.3/8 rather than read 10.0.0.0/8.
        entries.append(str(network) if "/" in entry else str(network.network_address))
    return tuple(entries)


def _origins(variable: str, raw: str | None) -> tuple[str, ...]:
    """Comma-separated browser origins, each exactly scheme://host[:port] as a browser sends it (no path, no *)."""
    if raw is None:
        return ()
    origins = []
    for entry in (part.strip() for part in raw.split(",")):
        try:
            parts = urlsplit(entry)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or "*" in entry
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise SettingsError(
                variable, f"expected comma-separated origins like https://app.example.com, got {entry!r}"
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        origins.append(f"{parts.scheme}://{host}" + (f":{port}" if port is not None else ""))
    return tuple(origins)


def _http_url(variable: str, url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(variable, f"expected an http:// or https:// URL, got {redact_url(url)!r}")
    return url


def _port(variable: str, raw: str, url: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(variable, f"port must be a number, got {raw!r} in {redact_url(url)!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(variable, f"port must be between 1 and 65535, got {port}")
    return port


def _bootstrap(variable: str, value: str) -> str:
    for server in value.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host:
            raise SettingsError(variable, f"expected host:port[,host:port...], got {redact_url(value)!r}")
        _port(variable, port, value)
    return value


def _mysql_address(variable: str, url: str) -> MySQLAddress:
    expected = "expected mysql://user:password@host:port/database"
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise SettingsError(variable, f"{expected}, got {shown!r}") from None
    if parts.scheme != "mysql" or not parts.hostname or not parts.username:
        raise SettingsError(variable, f"{expected}, got {shown!r}")
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise SettingsError(variable, f"{expected} (the database name is missing), got {shown!r}")
    if not _IDENTIFIER.match(database) or not _IDENTIFIER.match(unquote(parts.username)):
        raise SettingsError(variable, f"user and database names may hold only letters, digits and _, got {shown!r}")
    try:
        port = parts.port or 3306
    except ValueError:
        raise SettingsError(variable, f"{expected} (the port is not a number), got {shown!r}") from None
    return MySQLAddress(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        database=database,
    )


def _redis_address(variable: str, url: str) -> RedisAddress:
    expected = "expected redis://[user:password@]host:port/db"
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SettingsError(variable, f"{expected}, got {shown!r}") from None
    if parts.scheme != "redis" or not parts.hostname:
        raise SettingsError(variable, f"{expected}, got {shown!r}")
    db_text = parts.path.lstrip("/") or "0"
    if not (db_text.isascii() and db_text.isdigit()):
        raise SettingsError(variable, f"{expected} (the db must be a number), got {shown!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise SettingsError(variable, f"{expected} (the port is not a number), got {shown!r}") from None
    return RedisAddress(
        host=parts.hostname,
        port=port,
        db=int(db_text),
        password=unquote(parts.password) if parts.password else None,
        username=unquote(parts.username) if parts.username else None,
    )
