"""Provision the catalog's service identities (jobstream/identities.py) on the local stack's servers.

Kafka: a SCRAM-SHA-512 credential per identity and exactly the catalog's ACLs for its principal (extra ones are
deleted, so the broker never grants more than the catalog says). MariaDB: a user per identity with exactly its
grants. Redis: an ACL user per identity (`redis_acl_rules`, given to redis-server at start and re-applied to a
running one). Every step is idempotent: `python -m stack up` runs them all each time.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from jobstream.identities import IDENTITIES, Identity, KafkaAcl, local_password
from stack.errors import StackError

_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
_OPERATIONS = {
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
    "Describe": AclOperation.DESCRIBE,
    "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    "Create": AclOperation.CREATE,
    "Alter": AclOperation.ALTER,
    "AlterConfigs": AclOperation.ALTER_CONFIGS,
}
# Matches every ACL on the cluster (describe_acls' filter).
EVERY_ACL = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)
_SCRAM_ITERATIONS = 8192
_TIMEOUT_S = 15.0


def principal(identity: Identity) -> str:
    return f"User:{identity.name}"


def acl_bindings(identity: Identity) -> set[AclBinding]:
    """The identity's catalog ACLs as Kafka AclBindings, one per operation."""
    return {_binding(identity, acl, operation) for acl in identity.kafka for operation in acl.operations}


def _binding(identity: Identity, acl: KafkaAcl, operation: str) -> AclBinding:
    return AclBinding(
        _RESOURCES[acl.resource],
        acl.name,
        _PATTERNS[acl.pattern],
        principal(identity),
        "*",
        _OPERATIONS[operation],
        AclPermissionType.ALLOW,
    )


def provision_kafka(broker_config: Mapping[str, str], identities: Iterable[Identity] = IDENTITIES.values()) -> str:
    """Upsert every identity's SCRAM credential and make its ACLs the catalog's; returns a one-line summary."""
    admin = AdminClient({**broker_config, "log_level": 0})
    identities = list(identities)
    upserts = [
        UserScramCredentialUpsertion(
            identity.name,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, _SCRAM_ITERATIONS),
            local_password(identity.name).encode(),
        )
        for identity in identities
    ]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=_TIMEOUT_S).values():
        future.result()
    wanted = set().union(*(acl_bindings(identity) for identity in identities))
    principals = {principal(identity) for identity in identities}
    existing = {
        binding
        for binding in admin.describe_acls(EVERY_ACL, request_timeout=_TIMEOUT_S).result()
        if binding.principal in principals
    }
    missing, extra = wanted - existing, existing - wanted
    if missing:
        for future in admin.create_acls(list(missing), request_timeout=_TIMEOUT_S).values():
            future.result()
    if extra:
        filters = [
            AclBindingFilter(
                b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
            )
            for b in extra
        ]
        for future in admin.delete_acls(filters, request_timeout=_TIMEOUT_S).values():
            future.result()
    return f"{len(upserts)} SCRAM users, {len(wanted)} ACLs ({len(missing)} added, {len(extra)} removed)"


def wait_until_authenticated(client_config: Mapping[str, str], timeout_s: float = 30.0) -> None:
    """Wait until a freshly upserted SCRAM credential logs in (it reaches the brokers through the metadata log)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AdminClient({**client_config, "log_level": 0, "socket.timeout.ms": 2000})
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException as error:
            last = error
            time.sleep(0.3)
    raise StackError(f"Kafka refuses {client_config.get('sasl.username')} after provisioning: {last}")


_SQL_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_PRIVILEGE = re.compile(r"^[A-Z][A-Z ]*$")


def mysql_identities() -> list[Identity]:
    """The identities with a MariaDB user: those granted something (the others get no account at all)."""
    return [identity for identity in IDENTITIES.values() if identity.mysql and not identity.superuser]


def mysql_statements(identity: Identity, *, database: str, host: str, password: str) -> list[str]:
    """SQL that makes one identity's MariaDB user exist with exactly its grants (`password` is SQL-quoted already).

    CREATE OR REPLACE USER drops whatever the user had, so every run leaves exactly the catalog's grants.
    """
    names = [identity.mysql_user, database, *(grant.table for grant in identity.mysql if grant.table != "*")]
    if not all(_SQL_NAME.match(name) for name in names):
        raise ValueError(f"{names!r} are not all plain MariaDB names")
    if not all(_SQL_PRIVILEGE.match(privilege) for grant in identity.mysql for privilege in grant.privileges):
        raise ValueError(f"{identity.name}'s privileges are not all plain privilege names")
    user = f"'{identity.mysql_user}'@'{host}'"
    statements = [f"CREATE OR REPLACE USER {user} IDENTIFIED BY '{password}'"]
    for grant in identity.mysql:
        statements.append(f"GRANT {', '.join(grant.privileges)} ON {database}.{grant.table} TO {user}")
    return statements


def local_mysql_statements(database: str) -> list[str]:
    """Every identity's user on the local stack's MariaDB, from both names of loopback, with its local password;
    an identity granted nothing has no user (one left by an earlier catalog is dropped)."""
    users = mysql_identities()
    statements = []
    for host in ("localhost", "127.0.0.1"):
        for identity in IDENTITIES.values():
            if identity in users:
                password = local_password(identity.name)
                statements += mysql_statements(identity, database=database, host=host, password=password)
            elif not identity.superuser:
                statements.append(f"DROP USER IF EXISTS '{identity.mysql_user}'@'{host}'")
    return statements


def redis_acl_rules(identity: Identity) -> list[str]:
    """The identity's Redis ACL user, as ACL SETUSER arguments: only its keys, channels and commands."""
    password_hash = hashlib.sha256(local_password(identity.name).encode()).hexdigest()
    return ["reset", "on", f"#{password_hash}", *identity.redis]


def redis_users(identities: Iterable[Identity] = IDENTITIES.values()) -> dict[str, list[str]]:
    """Every identity with Redis rights, and the `default` user switched off (no unauthenticated client)."""
    users = {identity.name: redis_acl_rules(identity) for identity in identities if identity.redis}
    users["default"] = ["reset", "off"]
    return users


def apply_redis_users(client: redis.Redis) -> None:
    """Make a running server's ACL users the catalog's (a server started before a catalog change)."""
    for name, rules in redis_users().items():
        client.execute_command("ACL", "SETUSER", name, *rules)
