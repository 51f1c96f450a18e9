"""Apache Kafka in KRaft mode from Maven Central jars, as 1 to N combined broker+controller nodes.

Node i (1-based) listens on ``base_port + 2(i-1)`` for clients and the next port for the controller
quorum, and keeps its data under ``<root>/node-<i>``. Storage is formatted once and kept across restarts.

Every connection authenticates and every request is authorized (StandardAuthorizer, no ACL means no access):
clients with SASL/SCRAM-SHA-512 as their service identity (jobstream/identities.py, provisioned by
stack/identities.py), the nodes among themselves and the stack's provisioning with SASL/PLAIN as `broker`, the one
user the PLAIN login module knows and a superuser. SCRAM credentials live in the cluster metadata, so something
must log in before any exist: that is `broker`.
"""

from __future__ import annotations

import base64
import fcntl
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from stack import processes
from stack.errors import StackError
from stack.identities import provision_kafka

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
LOG4J_CONFIG = Path(__file__).resolve().parent / "kafka" / "log4j2.properties"
BROKER_USER = "broker"
BROKER_PASSWORD = "broker-local-password"
_PLAIN_LOGIN = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    f'username="{BROKER_USER}" password="{BROKER_PASSWORD}" user_{BROKER_USER}="{BROKER_PASSWORD}";'
)
_JVM_FLAGS = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


def kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if match is None:
        raise StackError(f"{POM} declares no kafka.version")
    return match.group(1)


def resolve_jars(cache_dir: Path) -> Path:
    """The broker classpath folder, filled by Maven on first use and reused afterwards."""
    version = kafka_version()
    lib_dir = cache_dir / f"lib-{version}"
    if (lib_dir / ".complete").exists():
        return lib_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Stacks started at once (dev, test, bench) share the cache: one fetches, the others wait and reuse it.
    with open(cache_dir / f"lib-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_jars(version, lib_dir)


def _fetch_jars(version: str, lib_dir: Path) -> Path:
    complete = lib_dir / ".complete"
    if complete.exists():
        return lib_dir
    cache_dir = lib_dir.parent
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is needed once to fetch the Kafka jars; install it and retry")
    staging = cache_dir / f"lib-{version}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output = result.stdout[-3000:] + result.stderr[-3000:]
        raise StackError(f"Maven could not resolve Kafka {version}:\n{output}")
    shutil.rmtree(lib_dir, ignore_errors=True)
    staging.rename(lib_dir)
    complete.touch()
    return lib_dir


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    directory: Path

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "stdout.log"


class KafkaCluster:
    """A local KRaft cluster of `brokers` combined nodes; every node is a voter of the quorum."""

    def __init__(self, root: Path, jar_cache: Path, brokers: int = 1, base_port: int = 9092) -> None:
        self.root = root
        self.jar_cache = jar_cache
        self.nodes = [
            KafkaNode(
                node_id=i,
                port=base_port + 2 * (i - 1),
                controller_port=base_port + 2 * (i - 1) + 1,
                directory=root / f"node-{i}",
            )
            for i in range(1, brokers + 1)
        ]
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def broker_client_config(self) -> dict[str, str]:
        """librdkafka settings to connect as the `broker` superuser (the stack's own provisioning)."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": BROKER_USER,
            "sasl.password": BROKER_PASSWORD,
        }

    @property
    def heap(self) -> str:
        # One broker gets the release script's 1 GiB; several share a 2-core machine.
        return "1g" if len(self.nodes) == 1 else "512m"

    def node(self, node_id: int) -> KafkaNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def running_pids(self) -> dict[int, int]:
        pids = {}
        for node in self.nodes:
            pid = processes.read_pid(node.pid_file)
            if pid is not None:
                pids[node.node_id] = pid
        return pids

    def start(self, timeout_s: float = 120.0) -> None:
        """Start every node not running yet, wait until all brokers are registered, provision the identities."""
        lib_dir = resolve_jars(self.jar_cache)
        cluster_id = self._cluster_id()
        running = self.running_pids()
        for node in self.nodes:
            if node.node_id in running:
                continue
            processes.ensure_port_free(node.port, f"Kafka node {node.node_id}")
            processes.ensure_port_free(node.controller_port, f"Kafka controller {node.node_id}")
            self._write_config(node)
            if not (node.data_dir / "meta.properties").exists():
                self._format(node, lib_dir, cluster_id)
            self.start_node(node.node_id, lib_dir)
        processes.wait_until(
            lambda: self.broker_ids() == [node.node_id for node in self.nodes],
            f"Kafka ({len(self.nodes)} broker(s) at {self.bootstrap})",
            timeout_s,
            self.nodes[0].logs_dir / "server.log",
        )
        provision_kafka(self.broker_client_config())

    def start_node(self, node_id: int, lib_dir: Path | None = None) -> None:
        node = self.node(node_id)
        lib_dir = lib_dir or resolve_jars(self.jar_cache)
        node.logs_dir.mkdir(parents=True, exist_ok=True)
        command = [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            *_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={node.logs_dir}",
            "-cp",
            f"{lib_dir}/*",
            "kafka.Kafka",
            str(node.config_file),
        ]
        self._children[node_id] = processes.spawn(command, node.pid_file, node.stdout_log)

    def stop(self) -> list[int]:
        """Stop every node (controlled shutdown, then SIGKILL after a grace period)."""
        stopped = processes.stop([node.pid_file for node in self.nodes], grace_s=60)
        for child in self._children.values():
            child.wait()
        self._children.clear()
        return [node.node_id for node in self.nodes if node.pid_file in stopped]

    def broker_ids(self) -> list[int]:
        try:
            admin = AdminClient({**self.broker_client_config(), "socket.timeout.ms": 2000, "log_level": 0})
            description = admin.describe_cluster(request_timeout=2).result()
        except Exception:
            return []
        return sorted(node.id for node in description.nodes)

    def _cluster_id(self) -> str:
        id_file = self.root / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        self.root.mkdir(parents=True, exist_ok=True)
        # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        id_file.write_text(cluster_id + "\n")
        return cluster_id

    def _format(self, node: KafkaNode, lib_dir: Path, cluster_id: str) -> None:
        result = subprocess.run(
            [
                "java",
                "-cp",
                f"{lib_dir}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node.config_file),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka node {node.node_id} failed:\n{result.stdout}{result.stderr}")

    def _write_config(self, node: KafkaNode) -> None:
        replicas = min(3, len(self.nodes))
        min_isr = min(2, len(self.nodes))
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        config = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"CLIENT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{node.port}",
            "inter.broker.listener.name": "CLIENT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.client.plain.sasl.jaas.config": _PLAIN_LOGIN,
            "listener.name.client.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": _PLAIN_LOGIN,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{BROKER_USER};User:admin",
            "log.dirs": node.data_dir,
            "num.partitions": 1,
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
        }
        node.directory.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text("".join(f"{key}={value}\n" for key, value in config.items()))
