"""Sinks: the only writers of the MySQL and Redis read models, batched and idempotent, plus replay and lag."""

from sinks.models import ReadModel, read_models
from sinks.mysql_pool import MySQLPool
from sinks.mysql_sink import Mapping, MySQLUpsertSink, RetryPolicy
from sinks.redis_sink import RedisReadModelSink

__all__ = ["Mapping", "MySQLPool", "MySQLUpsertSink", "ReadModel", "RedisReadModelSink", "RetryPolicy", "read_models"]
