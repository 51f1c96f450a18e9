"""Every service identity and what it may do in Kafka, MariaDB and Redis, declared once.

One identity per process kind (a Procfile line, a Kubernetes workload), named as its Strimzi `KafkaUser`. The local
stack provisions each on its own servers (`python -m stack up`: SCRAM credentials and ACLs in Kafka, a MariaDB
user with its grants, a Redis ACL user); `python -m stack.k8s_resources` writes the same Kafka ACLs as KafkaUsers.
Each process reads its own credentials from the environment (jobstream/settings.py), with the local stack's
development passwords as defaults.

What each identity may touch follows from its code, and tests check it against the code (tests/jobstream/
test_identities.py, tests/k8s/test_kafka_users.py) and on the servers (tests/stack/test_identities.py): the topic
constants its package imports, the read models' topics and tables, the Redis keys of state/redis_keys.py.
`admin` is the local stack's own superuser (stack tooling, migrations, SRE commands, tests and benchmarks); no
Procfile process that reaches a store runs as it.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import topics as t

# Quix Streams names a stateful application's internal topics `<type>__<group>--<topic>--<store>`
# (quixstreams/models/topics/manager.py), and creates them itself.
QUIX_INTERNAL_TOPIC_TYPES = ("changelog", "repartition")
# Kafka operations as Strimzi and the Kafka Admin API spell them.
_READ = ("Read", "Describe")
_WRITE = ("Write", "Describe")
_QUIX_TOPIC_EXTRA = ("DescribeConfigs",)  # Quix checks each topic's configs before it starts
_RECONCILE = ("Create", "Alter", "AlterConfigs", "Describe", "DescribeConfigs")

# MariaDB: the read models the sinks materialize (and replay rebuilds), and the accounts the gateway owns.
READ_MODEL_TABLES = (
    "jobs",
    "job_tags",
    "applications",
    "application_stage_history",
    "job_funnel",
    "notification_log",
    "job_window_stats",
    "company_window_stats",
)
ACCOUNT_TABLES = ("users", "refresh_tokens", "invitations", "outbox")
_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")

# Redis: what each identity may read or write (state/redis_keys.py), and the sink's change channel.
_READ_MODEL_KEYS = (
    "jobstream:job:*",
    "jobstream:jobs:trending:*",
    "jobstream:candidate:*",
    "jobstream:application:*",
)
_CHANGE_CHANNEL = "jobstream:applications:changed"
# Every data command, none of the server's administration (CONFIG, FLUSHALL, KEYS, DEBUG, ACL, ...), and of the
# scripting commands only those redis-py's Script runs (no SCRIPT FLUSH, no FUNCTION LOAD).
_REDIS_COMMANDS = (
    "+@all",
    "-@admin",
    "-@dangerous",
    "-@scripting",
    "+eval",
    "+evalsha",
    "+script|load",
    "+script|exists",
)


@dataclass(frozen=True)
class KafkaAcl:
    """One ACL rule: `operations` allowed on a resource, named literally or by prefix."""

    resource: str  # "topic", "group" or "transactionalId", as Strimzi spells them
    name: str
    operations: tuple[str, ...]
    pattern: str = "literal"  # or "prefix"


@dataclass(frozen=True)
class MySQLGrant:
    privileges: tuple[str, ...]
    table: str  # a table of the application database, or "*" for all of it


@dataclass(frozen=True)
class Identity:
    name: str
    # Why it exists and what its rights follow from; shown as a comment on its KafkaUser.
    purpose: str
    kafka: tuple[KafkaAcl, ...] = ()
    mysql: tuple[MySQLGrant, ...] = ()
    # Redis ACL rules after `on` and the password: key patterns (~ read-write, %R~ read-only), channels (&), commands.
    redis: tuple[str, ...] = ()
    superuser: bool = False

    @property
    def mysql_user(self) -> str:
        return "jobstream" if self.name == "admin" else f"jobstream_{self.name.replace('-', '_')}"

    @property
    def uses_kafka(self) -> bool:
        return self.superuser or bool(self.kafka)

    @property
    def uses_mysql(self) -> bool:
        return self.superuser or bool(self.mysql)

    @property
    def uses_redis(self) -> bool:
        return self.superuser or bool(self.redis)

    def kafka_topics(self, operation: str) -> set[str]:
        """Topics named literally with `operation` allowed."""
        return {
            acl.name
            for acl in self.kafka
            if acl.resource == "topic" and acl.pattern == "literal" and operation in acl.operations
        }

    def kafka_groups(self) -> set[str]:
        """The consumer group namespaces it may join (group ACLs are prefixes)."""
        return {acl.name for acl in self.kafka if acl.resource == "group" and "Read" in acl.operations}


def local_password(name: str) -> str:
    """The local stack's development password of an identity; production sets each one (jobstream/settings.py)."""
    return f"{name}-local-password"


def _client_acls(
    reads: tuple[str, ...] = (),
    writes: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
    *,
    quix: bool = False,
    stateful: bool = False,
    exactly_once: bool = False,
) -> tuple[KafkaAcl, ...]:
    """The ACLs of a client that reads, writes, joins consumer groups and (Quix) creates its internal topics.

    Each group name is a namespace: the ACLs grant every group, transactional id and Quix internal topic whose name
    starts with it, so one deployment may run several instances side by side (`jobstream-acceptance.eu`, or a test's
    `jobstream-acceptance.chaos-1a2b`) under one identity, and no other identity's groups.
    """
    extra = _QUIX_TOPIC_EXTRA if quix else ()
    acls = []
    for topic in dict.fromkeys((*reads, *writes)):
        operations = (*(("Read",) if topic in reads else ()), *(("Write",) if topic in writes else ()))
        acls.append(KafkaAcl("topic", topic, (*operations, "Describe", *extra)))
    if stateful:
        for kind in QUIX_INTERNAL_TOPIC_TYPES:
            operations = ("Create", "Read", "Write", "Describe", "DescribeConfigs")
            acls.extend(KafkaAcl("topic", f"{kind}__{group}", operations, "prefix") for group in groups)
    acls.extend(KafkaAcl("group", group, _READ, "prefix") for group in groups)
    if exactly_once:
        # topologies/runtime.py names every transactional.id `<group>-<instance id or a random id>`.
        acls.extend(KafkaAcl("transactionalId", group, _WRITE, "prefix") for group in groups)
    return tuple(acls)


# What the gateway writes (gateway/accounts/store.py, invitation_store.py): it never deletes, and only adds to the
# outbox (the relay marks rows sent).
_ACCOUNT_GRANTS = (
    MySQLGrant(("INSERT", "UPDATE"), "users"),
    MySQLGrant(("INSERT", "UPDATE"), "refresh_tokens"),
    MySQLGrant(("INSERT", "UPDATE"), "invitations"),
    MySQLGrant(("INSERT",), "outbox"),
)
_MYSQL_SINK_TOPICS = (
    t.JOB_LIFECYCLE,
    t.APPLICATION_DECIDED,
    t.APPLICATION_STAGE_CHANGED,
    t.NOTIFICATION_OUTCOME,
    t.ANALYTICS_JOB_MINUTE,
    t.ANALYTICS_COMPANY_HOUR,
)
_SCALED_GROUPS = (
    "jobstream-acceptance",
    "jobstream-analytics",
    "notifications",
    "notifications.retry",
    "jobstream-sinks-mysql",
    "jobstream-sinks-redis",
)
_SCALED_TOPICS = (
    t.JOB_LIFECYCLE,
    t.APPLICATION_CREATED,
    t.APPLICATION_STAGE_CHANGED,
    t.APPLICATION_DECIDED,
    t.JOB_VIEWED,
    t.USER_REGISTERED,
    t.NOTIFICATION_REQUESTED,
    t.NOTIFICATION_RETRY,
    t.NOTIFICATION_OUTCOME,
    t.ANALYTICS_JOB_MINUTE,
    t.ANALYTICS_COMPANY_HOUR,
)
_CATALOG_TOPICS = tuple(spec.name for spec in t.topic_catalog(replication_factor=1))

IDENTITIES: dict[str, Identity] = {
    identity.name: identity
    for identity in (
        Identity(
            "gateway",
            "gateway/applications/routes.py, gateway/jobs/routes.py write events; it reads the read models and "
            "owns the accounts; /readyz asks Kafka for metadata (Describe).",
            kafka=_client_acls(
                writes=(t.APPLICATION_CREATED, t.APPLICATION_STAGE_CHANGED, t.JOB_LIFECYCLE, t.JOB_VIEWED)
            ),
            mysql=(MySQLGrant(("SELECT",), "*"), *_ACCOUNT_GRANTS),
            redis=(
                *(f"%R~{pattern}" for pattern in _READ_MODEL_KEYS),
                "~jobstream:auth:*",
                "~jobstream:ratelimit:*",
                "~jobstream:gateway:*",
                "~jobstream:cache:*",
                "~jobstream:cache-lock:*",
                f"&{_CHANGE_CHANNEL}",
                *_REDIS_COMMANDS,
                "-publish",  # it listens for the sink's changes; it may not announce one
            ),
        ),
        Identity(
            "outbox-relay",
            "gateway/outbox_relay.py publishes the accounts outbox, which holds only user.registered.",
            kafka=_client_acls(writes=(t.USER_REGISTERED,)),
            mysql=(MySQLGrant(("SELECT", "UPDATE"), "outbox"),),
        ),
        Identity(
            "acceptance",
            "topologies/acceptance/topology.py: inputs, outputs and dead letters, exactly once, with state.",
            kafka=_client_acls(
                reads=(t.JOB_LIFECYCLE, t.APPLICATION_CREATED, t.APPLICATION_STAGE_CHANGED),
                writes=(t.APPLICATION_DECIDED, t.NOTIFICATION_REQUESTED, t.DEAD_LETTER),
                groups=("jobstream-acceptance",),
                quix=True,
                stateful=True,
                exactly_once=True,
            ),
        ),
        Identity(
            "analytics",
            "topologies/analytics/topology.py; its group_by(company_id) writes and reads a repartition topic.",
            kafka=_client_acls(
                reads=(t.APPLICATION_DECIDED, t.JOB_VIEWED, t.JOB_LIFECYCLE),
                writes=(t.ANALYTICS_JOB_MINUTE, t.ANALYTICS_COMPANY_HOUR, t.DEAD_LETTER),
                groups=("jobstream-analytics",),
                quix=True,
                stateful=True,
                exactly_once=True,
            ),
        ),
        Identity(
            "notifications",
            "topologies/notifications/topology.py, both stages (groups notifications and notifications.retry), at "
            "least once; its delivered ledger in Redis.",
            kafka=_client_acls(
                reads=(t.NOTIFICATION_REQUESTED, t.USER_REGISTERED, t.NOTIFICATION_RETRY),
                writes=(t.NOTIFICATION_RETRY, t.NOTIFICATION_OUTCOME, t.NOTIFICATION_DEAD_LETTER, t.DEAD_LETTER),
                # The retry stage's group is the fresh stage's + ".retry", inside its namespace.
                groups=("notifications",),
                quix=True,
                stateful=True,
            ),
            redis=("~jobstream:notifications:*", *_REDIS_COMMANDS),
        ),
        Identity(
            "sink-mysql",
            "sinks/mysql/models.py: every read model's topics and tables; no changelogs, no topic creation.",
            kafka=_client_acls(
                reads=_MYSQL_SINK_TOPICS, writes=(t.DEAD_LETTER,), groups=("jobstream-sinks-mysql",), quix=True
            ),
            mysql=tuple(MySQLGrant(_DML, table) for table in READ_MODEL_TABLES),
        ),
        Identity(
            "sink-redis",
            "sinks/redis/plans.py: the Redis read models and their change channel.",
            kafka=_client_acls(
                reads=(t.APPLICATION_DECIDED, t.APPLICATION_STAGE_CHANGED, t.JOB_LIFECYCLE),
                writes=(t.DEAD_LETTER,),
                groups=("jobstream-sinks-redis",),
                quix=True,
            ),
            redis=(
                *(f"~{pattern}" for pattern in _READ_MODEL_KEYS),
                "~jobstream:sink:*",
                f"&{_CHANGE_CHANNEL}",
                *_REDIS_COMMANDS,
            ),
        ),
        Identity(
            "replay",
            "sinks/sre/replay.py and snapshot.py: a plain consumer (group jobstream-replay, never committing) of the "
            "MySQL read models' topics and their snapshots, which it alone writes; alone it creates shadow tables "
            "and swaps them in.",
            kafka=_client_acls(
                reads=(*_MYSQL_SINK_TOPICS, t.READ_MODEL_SNAPSHOT),
                writes=(t.READ_MODEL_SNAPSHOT,),
                groups=("jobstream-replay",),
            ),
            mysql=(MySQLGrant((*_DML, "CREATE", "DROP", "ALTER", "INDEX"), "*"),),
        ),
        Identity(
            "topic-reconciler",
            "jobstream/topic_admin.py creates missing catalog topics, adds partitions and alters configs.",
            kafka=tuple(KafkaAcl("topic", topic, _RECONCILE) for topic in _CATALOG_TOPICS),
        ),
        Identity(
            "keda",
            "KEDA's kafka scaler: committed offsets of the scaled groups against the end offsets of their topics.",
            kafka=(
                *(KafkaAcl("group", group, ("Describe",)) for group in _SCALED_GROUPS),
                *(KafkaAcl("topic", topic, ("Describe",)) for topic in _SCALED_TOPICS),
                KafkaAcl("topic", "repartition__jobstream-analytics", ("Describe",), "prefix"),
            ),
        ),
        Identity(
            "admin",
            "The local stack's superuser: stack tooling, migrations, tests and benchmarks.",
            redis=("~*", "&*", "+@all"),
            superuser=True,
        ),
    )
}
