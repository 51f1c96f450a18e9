"""A local stack: Kafka, MariaDB and Redis on loopback, with topics and migrations applied (`python -m stack`).

Which stack, and so which folder and ports, is the settings' (JOBSTREAM_STACK: dev, test or bench).
"""

from __future__ import annotations

import fcntl
import time
from urllib.parse import urlsplit

from confluent_kafka.admin import AdminClient

from jobstream.consumer_offsets import wait_for_group_coordinator
from jobstream.settings import Settings
from jobstream.topic_admin import reconcile_topics
from schemas.topics import topic_catalog
from stack import processes
from stack.errors import StackError
from stack.identities import local_mysql_statements, provision_kafka, wait_until_authenticated
from stack.kafka import KafkaCluster, kafka_version
from stack.mariadb import LocalMariaDB
from stack.prometheus import prometheus_binary
from stack.prometheus import version as prometheus_version
from stack.redis_server import LocalRedis
from stack.supervisor import STOP_GRACE_S, pid_file, read_state
from state.migrate import apply_migrations, connect, load_migrations

_LOOPBACK = {"127.0.0.1", "localhost"}


def local_kafka(settings: Settings, brokers: int | None = None) -> KafkaCluster:
    """The local cluster; each size keeps its own folder, since a KRaft quorum's voters are fixed."""
    brokers = brokers or settings.local_kafka_brokers
    first = urlsplit("//" + settings.kafka.bootstrap.split(",")[0].strip())
    return KafkaCluster(
        root=settings.local_dir / f"kafka-{brokers}",
        jar_cache=settings.jar_cache,
        brokers=brokers,
        base_port=first.port or 9092,
    )


def up(settings: Settings) -> None:
    started = time.monotonic()
    kafka = local_kafka(settings)
    kafka_ids = kafka.broker_ids()
    kafka_note = "reused"
    wanted_ids = [node.node_id for node in kafka.nodes]
    if kafka_ids and kafka_ids != wanted_ids:
        raise StackError(
            f"Kafka at {settings.kafka.bootstrap} has brokers {kafka_ids}, not the {len(wanted_ids)} "
            "asked for; stop it first with `make down`"
        )
    if not kafka_ids:
        if urlsplit("//" + kafka.bootstrap.split(",")[0]).hostname not in _LOOPBACK:
            raise StackError(f"Kafka at {settings.kafka.bootstrap} does not answer")
        kafka.start()
        kafka_ids = kafka.broker_ids()
        kafka_note = "started"
    version = kafka_version() if kafka.running_pids() else "external"
    _print("kafka", f"{version} KRaft, brokers {kafka_ids} at {settings.kafka.bootstrap} ({kafka_note})")
    # Again on a reused cluster: the catalog may have changed since it started.
    _print("identities", f"kafka: {provision_kafka(kafka.broker_client_config())}")
    wait_until_authenticated(settings.kafka.client_config())

    admin = AdminClient(settings.kafka.client_config())
    catalog = topic_catalog(settings.topic_replication_factor)
    changes = reconcile_topics(admin, catalog, settings.topic_min_insync_replicas)
    for change in changes:
        _print("topic", f"{change.topic}: {change.action} {change.detail}")
    _print("topics", ", ".join(f"{spec.name}({spec.partitions})" for spec in catalog))
    # Readiness includes the group coordinator: on a fresh broker the first commit creates and loads
    # __consumer_offsets, and every consumer started before that is done gets COORDINATOR_LOAD_IN_PROGRESS.
    wait_for_group_coordinator(settings.kafka, catalog[0].name)

    mariadb_server = LocalMariaDB(settings.mysql, settings.local_dir / "mariadb")
    mariadb = mariadb_server.up()
    with connect(settings.mysql) as connection:
        migrations = load_migrations()
        applied = apply_migrations(connection, migrations)
    latest = migrations[-1].name if migrations else "none"
    # Grants name tables, so they follow the migrations; a server the stack did not start keeps its own users.
    if mariadb_server.private:
        statements = local_mysql_statements(settings.mysql.database)
        mariadb_server.run_as_admin(statements)
        users = sum(statement.startswith("CREATE") for statement in statements)
        _print("identities", f"mariadb: {users} users (identity x loopback name) with the catalog's grants")
    _print(
        "mariadb",
        f"{mariadb.version} at {settings.mysql.host}:{settings.mysql.port}/{settings.mysql.database} "
        f"({'started' if mariadb.started else 'reused'}); migrations: {len(applied)} applied now, "
        f"schema at {latest}",
    )

    redis_health = LocalRedis(settings.redis, settings.local_dir / "redis").up()
    _print(
        "redis",
        f"{redis_health.version} at {settings.redis.host}:{settings.redis.port}/{settings.redis.db} "
        f"({'started' if redis_health.started else 'reused'})",
    )
    # Not a server of the stack: the Procfile's `prometheus` process runs it. Installed here, with the others.
    prometheus = prometheus_binary()
    _print(
        "prometheus", f"{prometheus_version(prometheus)} at {prometheus} (the Procfile's `prometheus` process runs it)"
    )
    _print("ready", f"in {time.monotonic() - started:.1f}s")


def down(settings: Settings) -> None:
    # `make down` stops the supervisor, whose `make run` shell then runs `down` too: the lock has that one wait
    # until this one is done, then find nothing left to stop.
    settings.local_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.local_dir / "down.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _down(settings)


def _down(settings: Settings) -> None:
    supervisor = processes.stop([pid_file(settings.local_dir)], grace_s=STOP_GRACE_S + 5)
    _print("supervisor", "stopped, with every process it ran" if supervisor else "not running")
    stopped = []
    for root in sorted(settings.local_dir.glob("kafka-*")):
        stopped += local_kafka(settings, len(list(root.glob("node-*")))).stop()
    _print("kafka", f"stopped nodes {stopped}" if stopped else "not running")
    for name, service in (
        ("mariadb", LocalMariaDB(settings.mysql, settings.local_dir / "mariadb")),
        ("redis", LocalRedis(settings.redis, settings.local_dir / "redis")),
    ):
        _print(name, "stopped" if service.down() else "not running")
    others = settings.local_dir / "stacks"  # the dev stack's folder holds the other stacks' folders
    leftovers = [
        str(pid_file)
        for pid_file in settings.local_dir.glob("**/*.pid")
        if others not in pid_file.parents and processes.read_pid(pid_file) is not None
    ]
    if leftovers:
        raise StackError(f"still running after down: {', '.join(leftovers)}")


def status(settings: Settings) -> None:
    kafka = local_kafka(settings)
    _print("kafka", f"brokers {kafka.broker_ids() or 'none'} at {settings.kafka.bootstrap}")
    mariadb = LocalMariaDB(settings.mysql, settings.local_dir / "mariadb").version()
    _print("mariadb", mariadb or "not answering")
    redis_version = LocalRedis(settings.redis, settings.local_dir / "redis").version()
    _print("redis", redis_version or "not answering")
    state = read_state(settings.local_dir)
    if state is not None:
        running = processes.read_pid(pid_file(settings.local_dir)) is not None
        _print(
            "supervisor", f"pid {state['supervisor_pid']}, {'running' if running else 'not running; its last state:'}"
        )
        for name, process in state["processes"].items():
            last = "" if process["last_exit"] is None else f", last exit {process['last_exit']}"
            _print(f"  {name}", f"{process['state']}, pid {process['pid']}, {process['restarts']} restarts{last}")


def _print(part: str, text: str) -> None:
    print(f"{part:<8} {text}", flush=True)
