"""What kind of failure an exception is, so every stage reacts to it the same way.

- ``DATA``: the message itself cannot be handled (it does not decode, a template or header refuses it, MySQL
  refuses its values). Retrying cannot help: the stage dead-letters the message with the reason and goes on.
- ``TRANSIENT``: a dependency is down, slow or moving (Kafka, a fenced producer, MySQL, Redis, SMTP, a webhook).
  The message is fine: the stage retries, applies backpressure or rebuilds its clients, and never exits.
- ``FATAL``: anything else (a bug, a broken installation). The process exits and its supervisor restarts it,
  marking it failed if it keeps exiting, so a crash loop is loud instead of silently dead-lettering everything.
"""

from __future__ import annotations

import smtplib
from enum import StrEnum

import confluent_kafka
import httpx
import pymysql
import redis
from confluent_kafka.serialization import SerializationError
from quixstreams.exceptions import QuixException
from quixstreams.kafka.exceptions import BaseKafkaException, KafkaBrokerUnavailableError

from jobstream.errors import DependencyUnavailable
from schemas.errors import SchemaError


class FailureKind(StrEnum):
    DATA = "data"
    TRANSIENT = "transient"
    FATAL = "fatal"


# MySQL refuses a value: not null, duplicate, out of range, truncated, bad datetime, bad string, too long,
# no referenced row, check constraint.
MYSQL_DATA_ERRORS = frozenset({1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1452, 1690, 3819, 4025})

# Kafka refuses the record itself, not the moment: too large, invalid, or a (de)serializer refused it.
_KAFKA_DATA_ERRORS = frozenset(
    {
        confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE,
        confluent_kafka.KafkaError.INVALID_RECORD,
        confluent_kafka.KafkaError._KEY_SERIALIZATION,
        confluent_kafka.KafkaError._VALUE_SERIALIZATION,
        confluent_kafka.KafkaError._KEY_DESERIALIZATION,
        confluent_kafka.KafkaError._VALUE_DESERIALIZATION,
    }
)
_REDIS_TRANSIENT_REPLIES = ("OOM", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    confluent_kafka.KafkaException,
    BaseKafkaException,
    KafkaBrokerUnavailableError,
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.ReadOnlyError,  # a replica that was primary a moment ago, during a failover
    smtplib.SMTPServerDisconnected,
    httpx.TransportError,
    OSError,  # sockets: refused, reset, timed out; TimeoutError and ConnectionError are OSErrors
    DependencyUnavailable,
)
_DATA_TYPES: tuple[type[BaseException], ...] = (
    SchemaError,
    ValueError,  # UnicodeError too; an email header with CR/LF raises ValueError
    TypeError,
    KeyError,
    IndexError,
    ArithmeticError,
)


def classify(error: BaseException) -> FailureKind:
    """The kind of `error`, looking through the exceptions it was raised from."""
    for cause in _chain(error):
        if isinstance(cause, pymysql.MySQLError):
            return _classify_mysql(cause)
        if isinstance(cause, SerializationError) or _kafka_code(cause) in _KAFKA_DATA_ERRORS:
            return FailureKind.DATA
        if type(cause) is redis.ResponseError:
            # A script or command refused its arguments, unless the server is only out of memory or loading.
            transient = str(cause).startswith(_REDIS_TRANSIENT_REPLIES)
            return FailureKind.TRANSIENT if transient else FailureKind.DATA
        if isinstance(cause, _TRANSIENT_TYPES):
            return FailureKind.TRANSIENT
        # Quix wraps Kafka errors (commit failures, fenced transactions) in its own exceptions.
        if isinstance(cause, QuixException) and "Kafka" in type(cause).__name__:
            return FailureKind.TRANSIENT
    for cause in _chain(error):
        if isinstance(cause, _DATA_TYPES):
            return FailureKind.DATA
    return FailureKind.FATAL


def _classify_mysql(error: pymysql.MySQLError) -> FailureKind:
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if code in MYSQL_DATA_ERRORS or isinstance(error, pymysql.DataError | pymysql.IntegrityError):
        return FailureKind.DATA
    if code is None and isinstance(error, pymysql.ProgrammingError):
        # Raised by the client before anything is sent: a value it cannot write ("inf can not be used with MySQL").
        # The server's own programming errors (syntax, unknown table) always carry an error number.
        return FailureKind.DATA
    if isinstance(error, pymysql.OperationalError | pymysql.InterfaceError):
        return FailureKind.TRANSIENT
    return FailureKind.FATAL


def _kafka_code(error: BaseException) -> int | None:
    if isinstance(error, confluent_kafka.KafkaException) and error.args:
        kafka_error = error.args[0]
        if isinstance(kafka_error, confluent_kafka.KafkaError):
            return int(kafka_error.code())
    if isinstance(error, BaseKafkaException):
        return int(error.code)
    return None


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def describe(error: BaseException, limit: int = 2000) -> str:
    """``Type: message``, bounded, for a dead-letter header or a log line."""
    return f"{type(error).__name__}: {error}"[:limit]
