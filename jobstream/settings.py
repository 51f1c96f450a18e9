"""One typed settings object, read from the environment once, at the edge of each process.

Every variable is prefixed ``JOBSTREAM_``; each has a default that points at the local stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jobstream.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class MySQLAddress:
    host: str
    port: int
    user: str
    password: str
    database: str


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    db: int
    password: str | None


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    mysql: MySQLAddress
    mysql_url: str
    redis: RedisAddress
    redis_url: str
    # Replication factor and min.insync.replicas for catalog topics; 3 and 2 in production.
    topic_replication_factor: int
    topic_min_insync_replicas: int
    # Local stack only: where private servers keep their data, and how many Kafka brokers to run.
    local_dir: Path
    local_kafka_brokers: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; a bad value raises SettingsError naming its variable."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        mysql_url = reader.text("JOBSTREAM_MYSQL_URL", "mysql://jobstream:jobstream@127.0.0.1:3306/jobstream")
        redis_url = reader.text("JOBSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
        settings = cls(
            kafka_bootstrap=_bootstrap(
                "JOBSTREAM_KAFKA_BOOTSTRAP", reader.text("JOBSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
            ),
            mysql=_mysql_address("JOBSTREAM_MYSQL_URL", mysql_url),
            mysql_url=mysql_url,
            redis=_redis_address("JOBSTREAM_REDIS_URL", redis_url),
            redis_url=redis_url,
            topic_replication_factor=reader.integer("JOBSTREAM_TOPIC_REPLICATION_FACTOR", 1, minimum=1),
            topic_min_insync_replicas=reader.integer("JOBSTREAM_TOPIC_MIN_INSYNC_REPLICAS", 1, minimum=1),
            local_dir=Path(reader.text("JOBSTREAM_LOCAL_DIR", str(PROJECT_ROOT / ".local"))).resolve(),
            local_kafka_brokers=reader.integer("JOBSTREAM_LOCAL_KAFKA_BROKERS", 1, minimum=1, maximum=9),
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


def _port(variable: str, raw: str, url: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(variable, f"port must be a number, got {raw!r} in {url!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(variable, f"port must be between 1 and 65535, got {port}")
    return port


def _bootstrap(variable: str, value: str) -> str:
    for server in value.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host:
            raise SettingsError(variable, f"expected host:port[,host:port...], got {value!r}")
        _port(variable, port, value)
    return value


def _mysql_address(variable: str, url: str) -> MySQLAddress:
    expected = "expected mysql://user:password@host:port/database"
    parts = urlsplit(url)
    if parts.scheme != "mysql" or not parts.hostname or not parts.username:
        raise SettingsError(variable, f"{expected}, got {url!r}")
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise SettingsError(variable, f"{expected} (the database name is missing), got {url!r}")
    if not _IDENTIFIER.match(database) or not _IDENTIFIER.match(unquote(parts.username)):
        raise SettingsError(variable, f"user and database names may hold only letters, digits and _, got {url!r}")
    try:
        port = parts.port or 3306
    except ValueError:
        raise SettingsError(variable, f"{expected} (the port is not a number), got {url!r}") from None
    return MySQLAddress(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        database=database,
    )


def _redis_address(variable: str, url: str) -> RedisAddress:
    expected = "expected redis://[:password@]host:port/db"
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise SettingsError(variable, f"{expected}, got {url!r}")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise SettingsError(variable, f"{expected} (the db must be a number), got {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise SettingsError(variable, f"{expected} (the port is not a number), got {url!r}") from None
    return RedisAddress(
        host=parts.hostname,
        port=port,
        db=int(db_text),
        password=unquote(parts.password) if parts.password else None,
    )
