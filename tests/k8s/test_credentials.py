"""Every process reaches Kafka, MariaDB and Redis as its own service identity (jobstream/identities.py), as on the
local stack, and the servers know each identity as the catalog says.

A container's identity follows from its command (conftest.PROCESS_IDENTITIES, the identity each `__main__` passes to
Settings.from_env). A process whose identity has Kafka ACLs authenticates with SCRAM-SHA-512 over TLS as its own
KafkaUser: the five JOBSTREAM_KAFKA_* settings, its password from the Secret Strimzi's User Operator writes for that
user, the cluster CA mounted read-only. One whose identity has MariaDB grants or Redis rules reads its own URL, with
its own user, from its own key of the jobstream-datastores Secret; nobody reads anyone else's credentials. Whatever
runs with JOBSTREAM_ENV=production sets every credential `_require_credentials` demands of its identity. The
migrate Job's mariadb-users step is the generated script, run here against a stub client to read the SQL it sends.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from jobstream.errors import SettingsError
from jobstream.identities import IDENTITIES, Identity
from jobstream.settings import Settings
from stack.identities import mysql_identities
from stack.k8s_resources import (
    KAFKA_CLUSTER,
    MYSQL_DATABASE,
    MYSQL_HOST,
    OVERLAYS,
    mariadb_users_path,
    password_variable,
    render_mariadb_users,
)
from tests.k8s.conftest import Manifest, containers, environment, of_kind, pod_template, process_identity

# The first test to run installs kustomize and kubeconform (`go install`, minutes on a fresh machine).
pytestmark = pytest.mark.timeout(1800)

DATASTORES = "jobstream-datastores"
CLUSTER_CA = f"{KAFKA_CLUSTER}-cluster-ca-cert"
KAFKA_CA_DIR = "/etc/jobstream/kafka-ca"
KAFKA_VARIABLES = {
    "JOBSTREAM_KAFKA_BOOTSTRAP",
    "JOBSTREAM_KAFKA_SECURITY_PROTOCOL",
    "JOBSTREAM_KAFKA_SASL_MECHANISM",
    "JOBSTREAM_KAFKA_USERNAME",
    "JOBSTREAM_KAFKA_PASSWORD",
    "JOBSTREAM_KAFKA_SSL_CA_LOCATION",
}
# KEDA's operator is no workload here; it authenticates through its TriggerAuthentication (test_custom_resources).
NO_WORKLOAD = {"keda"}


def uses(identity: Identity, store: str) -> bool:
    """Whether the process of `identity` talks to `store`. The superuser `admin` runs only state.migrate here."""
    if identity.superuser:
        return store == "mysql"
    return bool(getattr(identity, store))


def process_containers(manifests):
    """(workload, pod spec, container, identity or None) of every container of the application image."""
    for workload, spec, container in containers(manifests):
        if container.get("command", [])[:2] == ["python", "-m"]:
            name = process_identity(container)
            yield workload, spec, container, None if name is None else IDENTITIES[name]


def variables(container: Manifest) -> dict[str, Manifest]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def secret_ref(container: Manifest, name: str) -> tuple[str, str] | None:
    variable = variables(container).get(name)
    if variable is None or "valueFrom" not in variable or "secretKeyRef" not in variable["valueFrom"]:
        return None
    ref = variable["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def secret(manifests, name: str) -> dict[str, str]:
    return of_kind(manifests, "Secret")[name]["stringData"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_identity_but_kedas_runs_in_a_workload_and_every_process_has_one(rendered, overlay):
    seen = {identity.name for _, _, _, identity in process_containers(rendered[overlay]) if identity is not None}
    assert seen == set(IDENTITIES) - NO_WORKLOAD


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_kafka_client_authenticates_as_its_own_kafka_user_with_scram_over_tls(rendered, overlay):
    manifests = rendered[overlay]
    (kafka,) = of_kind(manifests, "Kafka").values()
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    users = of_kind(manifests, "KafkaUser")
    clients = 0
    for workload, spec, container, identity in process_containers(manifests):
        where = f"{workload}/{container['name']}"
        env = environment(manifests, spec, container)
        mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
        if identity is None or not identity.kafka:
            assert not {"JOBSTREAM_KAFKA_USERNAME", "JOBSTREAM_KAFKA_PASSWORD"} & set(env), where
            assert KAFKA_CA_DIR not in mounts, where
            continue
        clients += 1
        assert set(env) >= KAFKA_VARIABLES, f"{where}: missing {KAFKA_VARIABLES - set(env)}"
        assert env["JOBSTREAM_KAFKA_BOOTSTRAP"] == f"{KAFKA_CLUSTER}-kafka-bootstrap:{listener['port']}", where
        # The listener's TLS and SCRAM-SHA-512 (k8s/base/kafka/cluster.yaml), seen from librdkafka.
        assert listener["tls"] is True and env["JOBSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", where
        assert listener["authentication"] == {"type": "scram-sha-512"}
        assert env["JOBSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", where
        assert variables(container)["JOBSTREAM_KAFKA_USERNAME"]["value"] == identity.name in users, where
        assert secret_ref(container, "JOBSTREAM_KAFKA_PASSWORD") == (identity.name, "password"), where
        # The cluster CA's certificate, read-only, where JOBSTREAM_KAFKA_SSL_CA_LOCATION points.
        assert env["JOBSTREAM_KAFKA_SSL_CA_LOCATION"] == f"{KAFKA_CA_DIR}/ca.crt", where
        mount = mounts[KAFKA_CA_DIR]
        assert mount.get("readOnly") is True and "subPath" not in mount, where
        (volume,) = [volume for volume in spec["volumes"] if volume["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == CLUSTER_CA
        assert volume["secret"].get("items", [{"key": "ca.crt", "path": "ca.crt"}]) == [
            {"key": "ca.crt", "path": "ca.crt"}
        ], where
        # The NetworkPolicy kafka-clients (and Strimzi's, from networkPolicyPeers) admit only these pods.
        labels = next(
            pod_template(m)["metadata"]["labels"]
            for m in manifests
            if f"{m['kind']}/{m['metadata']['name']}" == workload
        )
        assert labels.get("jobstream.io/kafka-client") == "true", where
    # gateway, outbox, acceptance, analytics, 2 notification stages, 2 sinks, topics, replay, snapshot
    assert clients == 11


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_mysql_and_redis_client_logs_in_as_its_own_user_from_its_own_key(rendered, overlay):
    manifests = rendered[overlay]
    datastores = secret(manifests, DATASTORES)
    policies = of_kind(manifests, "NetworkPolicy")
    reachers = {
        store: set(policies[f"{store}-clients"]["spec"]["podSelector"]["matchExpressions"][0]["values"])
        for store in ("mariadb", "redis")
    }
    for workload, _, container, identity in process_containers(manifests):
        where = f"{workload}/{container['name']}"
        app = workload.split("/", 1)[1]
        for store, variable in (("mysql", "JOBSTREAM_MYSQL_URL"), ("redis", "JOBSTREAM_REDIS_URL")):
            if identity is None or not uses(identity, store):
                assert variable not in variables(container), where
                continue
            assert secret_ref(container, variable) == (DATASTORES, f"{store}-url-{identity.name}"), where
            url = urlsplit(datastores[f"{store}-url-{identity.name}"])
            # Its password is the one the server is given for that user (the same Secret's *-password-* key).
            assert unquote(url.password or "") == datastores[f"{store}-password-{identity.name}"], where
            if store == "mysql":
                assert (url.scheme, url.hostname, url.port) == ("mysql", MYSQL_HOST, 3306), where
                assert (url.username, url.path) == (identity.mysql_user, f"/{MYSQL_DATABASE}"), where
                assert app in reachers["mariadb"], f"{where} may not reach MariaDB"
            else:
                assert (url.scheme, url.hostname, url.port, url.path) == ("redis", "redis", 6379, "/0"), where
                assert url.username == identity.name, where
                assert app in reachers["redis"], f"{where} may not reach Redis"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_production_processes_set_every_credential_their_identity_needs(rendered, overlay):
    manifests = rendered[overlay]
    production = 0
    for workload, spec, container, identity in process_containers(manifests):
        env = environment(manifests, spec, container)
        if env.get("JOBSTREAM_ENV") != "production":
            continue
        production += 1
        assert identity is not None, workload
        needed = {
            *(["JOBSTREAM_KAFKA_USERNAME", "JOBSTREAM_KAFKA_PASSWORD"] if identity.uses_kafka else []),
            *(["JOBSTREAM_MYSQL_URL"] if identity.uses_mysql else []),
            *(["JOBSTREAM_REDIS_URL"] if identity.uses_redis else []),
        }
        assert needed <= set(variables(container)), f"{workload}: {needed - set(variables(container))}"
        Settings.from_env(env, identity=identity.name)
        # Each one is really demanded: without it the process refuses to start, naming it.
        for name in sorted(needed):
            with pytest.raises(SettingsError) as refused:
                Settings.from_env({key: value for key, value in env.items() if key != name}, identity=identity.name)
            assert refused.value.variable == name
    assert production >= 1, "the gateway runs in production mode"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_redis_knows_each_identity_as_its_acl_user_with_the_catalogs_rules(rendered, overlay):
    manifests = rendered[overlay]
    (container,) = of_kind(manifests, "StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    starts = [index for index, arg in enumerate(args) if arg == "--user"]
    users = {}
    for start in starts:
        end = next((i for i in range(start + 1, len(args)) if args[i].startswith("--")), len(args))
        name, *rules = args[start + 1 : end]
        users[name] = rules
    redis_identities = [identity for identity in IDENTITIES.values() if identity.redis and not identity.superuser]
    assert list(users) == [identity.name for identity in redis_identities]
    for identity in redis_identities:
        variable = password_variable("redis", identity)
        assert users[identity.name] == ["reset", "on", f">$({variable})", *identity.redis]
        assert secret_ref(container, variable) == (DATASTORES, f"redis-password-{identity.name}")
    # `default` keeps a password of its own, for the probes (redis-cli reads REDISCLI_AUTH) and operators.
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    default = (DATASTORES, "redis-password")
    assert secret_ref(container, "REDIS_PASSWORD") == secret_ref(container, "REDISCLI_AUTH") == default


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_migrate_job_migrates_as_admin_then_makes_every_identitys_mariadb_user(rendered, overlay):
    manifests = rendered[overlay]
    spec = of_kind(manifests, "Job")["migrate"]["spec"]["template"]["spec"]
    (migrate,) = spec["initContainers"]
    (users,) = spec["containers"]
    assert migrate["command"] == ["python", "-m", "state.migrate"]
    assert secret_ref(migrate, "JOBSTREAM_MYSQL_URL") == (DATASTORES, "mysql-url-admin")
    assert users["name"] == "mariadb-users"
    assert users["command"] == ["sh", "/etc/jobstream/mariadb-users/users.sh"]
    (mount,) = [m for m in users["volumeMounts"] if m["mountPath"] == "/etc/jobstream/mariadb-users"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    script = of_kind(manifests, "ConfigMap")[volume["configMap"]["name"]]["data"]["users.sh"]
    assert script == render_mariadb_users() == mariadb_users_path().read_text()
    assert secret_ref(users, "MYSQL_PWD") == (DATASTORES, "mariadb-root-password")
    for identity in mysql_identities():
        variable = password_variable("mysql", identity)
        assert secret_ref(users, variable) == (DATASTORES, f"mysql-password-{identity.name}")
    # The admin user is the server's own application user, created by the image from these.
    (server,) = of_kind(manifests, "StatefulSet")["mariadb"]["spec"]["template"]["spec"]["containers"]
    env = variables(server)
    assert env["MARIADB_USER"]["value"] == IDENTITIES["admin"].mysql_user
    assert env["MARIADB_DATABASE"]["value"] == MYSQL_DATABASE
    assert secret_ref(server, "MARIADB_PASSWORD") == (DATASTORES, "mysql-password-admin")
    assert secret_ref(server, "MARIADB_ROOT_PASSWORD") == (DATASTORES, "mariadb-root-password")


def _sql_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "''")


@pytest.mark.unit
def test_the_mariadb_users_script_sends_exactly_the_catalogs_users_and_grants(tmp_path: Path):
    """Run the committed script with a stub `mariadb` that records its arguments and the SQL on its stdin."""
    stub = tmp_path / "bin" / "mariadb"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\ncat > {tmp_path}/sql\n')
    stub.chmod(0o755)
    passwords = {identity.name: f"pw-{identity.name}" for identity in mysql_identities()}
    passwords["gateway"] = "it's a \\ test"  # quotes and backslashes reach SQL escaped
    env = {
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "MYSQL_PWD": "root-password",
        **{password_variable("mysql", IDENTITIES[name]): password for name, password in passwords.items()},
    }
    result = subprocess.run(
        ["sh", str(mariadb_users_path())], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == [f"--host={MYSQL_HOST}", "--user=root", "--batch"]

    expected = []
    for identity in mysql_identities():
        user = f"'{identity.mysql_user}'@'%'"
        expected.append(f"CREATE OR REPLACE USER {user} IDENTIFIED BY '{_sql_string(passwords[identity.name])}';")
        for grant in identity.mysql:
            target = f"{MYSQL_DATABASE}.{grant.table}"
            expected.append(f"GRANT {', '.join(grant.privileges)} ON {target} TO {user};")
    assert (tmp_path / "sql").read_text().splitlines() == expected
    assert {identity.name for identity in mysql_identities()} == {"gateway", "outbox-relay", "sink-mysql", "replay"}

    # A password missing from the environment stops it before anything is sent.
    (tmp_path / "sql").unlink()
    del env[password_variable("mysql", IDENTITIES["replay"])]
    result = subprocess.run(["sh", str(mariadb_users_path())], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "MYSQL_PASSWORD_REPLAY" in result.stderr
    assert not (tmp_path / "sql").exists()
