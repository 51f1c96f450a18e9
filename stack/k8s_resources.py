"""`python -m stack.k8s_resources [--check]`: write the Kubernetes resources generated from the project's catalogs.

- Each overlay's Strimzi `KafkaTopic`s, from `schemas/topics.py` (`k8s/overlays/<overlay>/kafka-topics.yaml`).
  `schemas/topics.py` stays the one place a topic is declared: `python -m stack up` reconciles it on the local
  stack, and the Strimzi Topic Operator reconciles the same specs on a cluster. Each overlay has its own
  replication factor and min.insync.replicas (its Kafka cluster's size), which is why the files live there.
- One Strimzi `KafkaUser` per service identity of `jobstream/identities.py` (`k8s/base/kafka/users.yaml`): SCRAM-SHA-512
  and exactly the catalog's ACLs, the same ones `python -m stack up` gives each identity on the local broker.
- The script that makes each identity's MariaDB user exist with exactly its catalog grants
  (`k8s/base/data/mariadb-users.sh`, run by the migrate Job after the migrations, as `stack up` does locally).

The files are committed, so a review shows what a catalog change deploys. `--check` writes nothing and exits 1 when
a committed file differs from what the catalogs generate.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobstream.identities import IDENTITIES, Identity, KafkaAcl
from schemas.topics import TopicSpec, topic_catalog
from stack.identities import mysql_identities, mysql_statements

K8S_DIR = Path(__file__).resolve().parent.parent / "k8s"
# The Strimzi `Kafka` resource the topics and users belong to (k8s/base/kafka/cluster.yaml).
KAFKA_CLUSTER = "jobstream"
TOPICS_FILE = "kafka-topics.yaml"
# Relative to K8S_DIR.
USERS_FILE = Path("base/kafka/users.yaml")
MARIADB_USERS_FILE = Path("base/data/mariadb-users.sh")
# The application database every MariaDB URL of k8s/base/secrets.yaml names, and the server's Service.
MYSQL_DATABASE = "jobstream"
MYSQL_HOST = "mariadb"
_WIDTH = 120
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Plain scalars YAML 1.1 reads as something other than a string.
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


@dataclass(frozen=True)
class OverlayKafka:
    """One overlay's Kafka durability: what its brokers can hold (prod: 3 brokers, one may be down)."""

    replication_factor: int
    min_insync_replicas: int


OVERLAYS = {
    "dev": OverlayKafka(replication_factor=1, min_insync_replicas=1),
    "prod": OverlayKafka(replication_factor=3, min_insync_replicas=2),
}


def resource_name(topic: str) -> str:
    """A topic name as a Kubernetes object name: dots and underscores are not both allowed there."""
    return re.sub(r"[._]", "-", topic)


def kafka_topic(spec: TopicSpec, min_insync_replicas: int) -> dict[str, object]:
    """The KafkaTopic for one catalog topic: same name, partitions, replicas and configs as `stack up` creates."""
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": resource_name(spec.name), "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replication_factor,
            "config": spec.config(min_insync_replicas),
        },
    }


def render_topics(overlay: OverlayKafka) -> str:
    """The whole topics file of one overlay, as YAML (a stable layout, so regenerating is byte-for-byte equal)."""
    catalog = topic_catalog(overlay.replication_factor)
    names = [resource_name(spec.name) for spec in catalog]
    if len(set(names)) != len(names):
        raise ValueError(f"two catalog topics map to one Kubernetes name: {names}")
    documents = [_yaml(kafka_topic(spec, overlay.min_insync_replicas)) for spec in catalog]
    header = "# Generated from schemas/topics.py by `python -m stack.k8s_resources`: edit the catalog, not this file.\n"
    return header + "".join(f"---\n{document}" for document in documents)


def kafka_identities() -> list[Identity]:
    """The identities with a KafkaUser: all but the local stack's superuser, in catalog order."""
    return [identity for identity in IDENTITIES.values() if identity.kafka and not identity.superuser]


def password_variable(store: str, identity: Identity) -> str:
    """The environment variable a data server's pod reads an identity's password from: MYSQL_PASSWORD_SINK_MYSQL."""
    return f"{store.upper()}_PASSWORD_{identity.name.upper().replace('-', '_')}"


def acl_rule(acl: KafkaAcl) -> dict[str, object]:
    """One catalog ACL as a Strimzi `simple` authorization rule."""
    return {
        "resource": {"type": acl.resource, "name": acl.name, "patternType": acl.pattern},
        "operations": list(acl.operations),
    }


_USERS_HEADER = """\
# Generated from jobstream/identities.py by `python -m stack.k8s_resources`: edit the catalog, not this file.
# One KafkaUser per service identity (the local stack's superuser `admin` has none): SCRAM-SHA-512, its password
# written by Strimzi's User Operator into a Secret of the user's name (key `password`), and exactly the catalog's
# ACLs, the ones `python -m stack up` gives the same identity on the local broker. Each process reads and writes only
# its topics; its consumer group name is a namespace (jobstream/identities.py): it may join the groups, use the
# transactional ids and create the Quix internal topics (`changelog__<group>--...`, `repartition__<group>--...`,
# quixstreams/models/topics/manager.py) whose names start with it, and nothing of another identity's. With
# JOBSTREAM_<TOPOLOGY>_INSTANCE_ID set, a topology's transactional.id is `<group>-<instance id>`
# (topologies/runtime.py): the StatefulSets set it to the pod name, so the prefix covers every replica.
# tests/k8s/test_kafka_users.py checks the catalog's rights against what each process's code reads and writes.
"""


def render_users() -> str:
    """k8s/base/kafka/users.yaml: one KafkaUser per identity, its purpose as a comment, one flow-style line per ACL."""
    documents = []
    for identity in kafka_identities():
        comment = textwrap.wrap(f"{identity.name}: {identity.purpose}", width=_WIDTH - 2, break_on_hyphens=False)
        lines = [
            *(f"# {line}" for line in comment),
            "apiVersion: kafka.strimzi.io/v1beta2",
            "kind: KafkaUser",
            "metadata:",
            f"  name: {_flow(identity.name)}",
            "  labels:",
            f"    strimzi.io/cluster: {KAFKA_CLUSTER}",
            "spec:",
            "  authentication:",
            "    type: scram-sha-512",
            "  authorization:",
            "    type: simple",
            "    acls:",
            *(f"      - {_flow(acl_rule(acl))}" for acl in identity.kafka),
        ]
        documents.append("".join(f"{line}\n" for line in lines))
    return _USERS_HEADER + "".join(f"---\n{document}" for document in documents)


_MARIADB_HEADER = f"""\
# Generated from jobstream/identities.py by `python -m stack.k8s_resources`: edit the catalog, not this file.
# Makes each service identity's MariaDB user exist with exactly the catalog's grants, as `python -m stack up` does
# on the local stack (stack/identities.py). The migrate Job runs it after the migrations, since grants name tables,
# as root (MYSQL_PWD); CREATE OR REPLACE USER drops what a user had, so every run leaves exactly the catalog's grants.
# Each password comes from the environment (MYSQL_PASSWORD_<IDENTITY>, from the jobstream-datastores Secret, equal to
# the one in that identity's mysql-url-<identity>), quoted for SQL here. A client may connect from any pod address
# ('%'): the NetworkPolicies decide which pods reach {MYSQL_HOST}:3306.
set -eu
sql_string() {{ printf '%s' "$1" | sed -e 's/\\\\/\\\\\\\\/g' -e "s/'/''/g"; }}
"""


def render_mariadb_users() -> str:
    """k8s/base/data/mariadb-users.sh: the SQL of every identity's user and grants, fed to the mariadb client."""
    identities = mysql_identities()
    statements = [
        statement
        for identity in identities
        for statement in mysql_statements(
            identity,
            database=MYSQL_DATABASE,
            host="%",
            password=f'$(sql_string "${password_variable("mysql", identity)}")',
        )
    ]
    # Every password set and not empty, or nothing is sent (a failed expansion inside the here-document would not
    # stop the client).
    required = ["MYSQL_PWD", *(password_variable("mysql", identity) for identity in identities)]
    checks = "".join(f': "${{{variable}:?must be set}}"\n' for variable in required)
    body = "".join(f"{statement};\n" for statement in statements)
    return f"{_MARIADB_HEADER}{checks}mariadb --host={MYSQL_HOST} --user=root --batch <<SQL\n{body}SQL\n"


def _yaml(value: dict[str, object], indent: int = 0) -> str:
    """Block-style YAML of nested dicts and scalars; scalars as JSON, which YAML reads as the same value."""
    lines = []
    for key, item in value.items():
        prefix = " " * indent + f"{key}:"
        if isinstance(item, dict):
            lines.append(prefix + "\n" + _yaml(item, indent + 2))
        else:
            lines.append(f"{prefix} {json.dumps(item)}\n")
    return "".join(lines)


def _flow(value: object) -> str:
    """Flow-style YAML of nested dicts, lists and strings: plain where YAML reads it back as the same string."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(key)}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if not isinstance(value, str):
        raise TypeError(f"only strings, lists and dicts: {value!r}")
    if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value)


def topics_path(overlay: str) -> Path:
    return K8S_DIR / "overlays" / overlay / TOPICS_FILE


def users_path() -> Path:
    return K8S_DIR / USERS_FILE


def mariadb_users_path() -> Path:
    return K8S_DIR / MARIADB_USERS_FILE


def generated_files() -> dict[Path, str]:
    """Every generated file and the text the catalogs make of it."""
    files = {topics_path(name): render_topics(overlay) for name, overlay in OVERLAYS.items()}
    files[users_path()] = render_users()
    files[mariadb_users_path()] = render_mariadb_users()
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.k8s_resources", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated_files().items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale, run `python -m stack.k8s_resources`: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
