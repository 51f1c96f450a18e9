"""Helpers for the end-to-end tests: the platform's real processes, an in-process gateway, a private MariaDB.

Every process gets a consumer group of its own whose offsets are committed at the current end of its inputs
before it starts (as `tests.topology_harness` does), and a local directory of its own, so it sees only what
is produced after it was created and never touches the shared groups or `.local`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx

from jobstream.consumer_offsets import commit_at_end
from jobstream.settings import PROJECT_ROOT, MySQLAddress, Settings
from sinks.mysql.models import read_models
from sinks.redis.plans import plans
from stack.mariadb import LocalMariaDB
from stack.processes import free_port
from state.migrate import apply_migrations, connect, load_migrations

MYSQL_SINK_TOPICS = sorted({topic for model in read_models().values() for topic in model.topics})
REDIS_SINK_TOPICS = sorted(plans())
NOTIFICATION_TOPIC = "notification.requested"
NOTIFICATION_RETRY_TOPIC = "notification.retry"
USER_REGISTERED_TOPIC = "user.registered"


def mysql_url(address: MySQLAddress, database: str) -> str:
    return f"mysql://{address.user}:{address.password}@{address.host}:{address.port}/{database}"


def with_database(settings: Settings, address: MySQLAddress, database: str) -> Settings:
    """`settings` with MySQL at `address`, database `database` (what the gateway reads and writes)."""
    moved = dataclasses.replace(address, database=database)
    return dataclasses.replace(settings, mysql=moved, mysql_url=mysql_url(moved, database))


def rows(address: MySQLAddress, database: str, sql: str, args: object = None) -> tuple:
    with connect(address, database) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {value!r})")
        time.sleep(interval_s)


async def eventually(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.3) -> Any:
    """`wait_for` for async tests: sleeps without blocking the event loop (the in-process gateway runs on it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {value!r})")
        await anyio.sleep(interval_s)


@dataclasses.dataclass
class Service:
    """One of the platform's processes (`python -m ...`) with its own environment and log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    # The consumer group it consumes in, when it is a stage.
    group: str | None = None
    process: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False)

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-W", "ignore", "-m", *self.argv],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no flush, no offset commit, no leaving the group."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        elif self.process is not None:
            self.process.wait(10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.name} ({self.log_path}) ---\n" + self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return f"--- {self.name}: no log ---"


class Services:
    """Creates processes with fresh groups under `workdir`; `close()` stops every one (reverse order)."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self._settings = settings
        self._workdir = workdir
        self.started: list[Service] = []

    def stage(
        self, name: str, argv: list[str], group_variable: str, inputs: list[str], group_suffix: str = "", **env: str
    ) -> Service:
        """A stage (`python -m <argv>`) in a new consumer group, named in `group_variable`, that starts at the
        current end of `inputs`: it sees only what is produced after this call. A stage that consumes in its
        configured group plus a suffix (the notifications' retry lane: ``.retry``) names it in `group_suffix`."""
        configured = f"test-{name}-{uuid.uuid4().hex[:10]}"
        group = configured + group_suffix
        commit_at_end(self._settings.kafka, group, inputs)
        service = self._service(name, argv, {group_variable: configured, **env})
        service.group = group
        return service

    def _service(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        home = self._workdir / f"{name}-{uuid.uuid4().hex[:6]}"
        home.mkdir(parents=True)
        full_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # Quix makes a state directory even for a stateless app: keep it out of the shared .local.
            "JOBSTREAM_LOCAL_DIR": str(home / "local"),
            # Stages consume in groups of their own, not their identity's: each process reaches Kafka as the tests do.
            **self._settings.kafka.environment(),
            **env,
        }
        service = Service(name, argv, full_env, home / "process.log")
        self.started.append(service)
        return service

    def topology(self, name: str, inputs: list[str]) -> Service:
        """`python -m topologies.<name>` in a new group at the end of `inputs`, committing every 250 ms."""
        prefix = f"JOBSTREAM_{name.upper()}_"
        return self.stage(
            name,
            [f"topologies.{name}"],
            f"{prefix}GROUP",
            inputs,
            **{f"{prefix}METRICS_PORT": "0", f"{prefix}COMMIT_INTERVAL_MS": "250"},
        )

    def mysql_sink(self, url: str, group: str | None = None, **env: str) -> Service:
        """`python -m sinks mysql` into `url`; a new group starts at the end of its topics."""
        env = {"JOBSTREAM_MYSQL_URL": url, "JOBSTREAM_SINKS_COMMIT_INTERVAL_MS": "250", **env}
        if group is None:
            return self.stage("sink_mysql", ["sinks", "mysql"], "JOBSTREAM_SINKS_MYSQL_GROUP", MYSQL_SINK_TOPICS, **env)
        return self._service("sink_mysql", ["sinks", "mysql"], {"JOBSTREAM_SINKS_MYSQL_GROUP": group, **env})

    def redis_sink(self, redis_url: str, **env: str) -> Service:
        return self.stage(
            "sink_redis",
            ["sinks", "redis"],
            "JOBSTREAM_SINKS_REDIS_GROUP",
            REDIS_SINK_TOPICS,
            JOBSTREAM_REDIS_URL=redis_url,
            JOBSTREAM_SINKS_COMMIT_INTERVAL_MS="250",
            **env,
        )

    def notifications(self, smtp_port: int, webhook_url: str, stage: str = "fresh") -> Service:
        """One stage of the notification topology: `fresh` reads notification.requested, `retry` its retry lane."""
        return self.stage(
            f"notifications_{stage}",
            ["topologies.notifications", "--stage", stage],
            "JOBSTREAM_NOTIFICATIONS_GROUP",
            [NOTIFICATION_TOPIC, USER_REGISTERED_TOPIC] if stage == "fresh" else [NOTIFICATION_RETRY_TOPIC],
            group_suffix=".retry" if stage == "retry" else "",
            JOBSTREAM_SMTP_PORT=str(smtp_port),
            JOBSTREAM_SMS_WEBHOOK_URL=f"{webhook_url}/sms",
            JOBSTREAM_PUSH_WEBHOOK_URL=f"{webhook_url}/push",
            JOBSTREAM_NOTIFICATIONS_METRICS_PORT=str(free_port()),
        )

    def outbox_relay(self, mysql_url: str) -> Service:
        """`python -m gateway.outbox_relay` from the outbox of `mysql_url`'s database (user.registered)."""
        return self._service(
            "outbox",
            ["gateway.outbox_relay"],
            {"JOBSTREAM_MYSQL_URL": mysql_url, "JOBSTREAM_OUTBOX_POLL_INTERVAL_MS": "100"},
        )

    def close(self) -> None:
        errors = []
        for service in reversed(self.started):
            try:
                service.stop()
            except Exception as error:  # stop the others all the same
                errors.append(error)
        if errors:
            raise errors[0]

    def logs(self) -> str:
        return "\n".join(service.log_tail() for service in self.started)


@contextlib.asynccontextmanager
async def gateway_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway app for `settings`, lifespan running, behind an httpx client from a client IP of its own."""
    from gateway.app import build_app

    app = build_app(settings)
    client_ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
            yield client


async def register(client: httpx.AsyncClient, role: str) -> dict[str, Any]:
    """A new account through the gateway: its session (access token, user profile) and its email."""
    email = f"{role}-{uuid.uuid4().hex[:12]}@example.test"
    body = {"email": email, "password": "correct horse battery staple", "display_name": f"A {role}", "role": role}
    response = await client.post("/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    session = response.json()
    session["email"] = email
    session["headers"] = {"Authorization": f"Bearer {session['access_token']}"}
    return session


APPLICATION_BODY = {"cover_letter": "I would like to work on streams.", "resume_url": "https://cv.example.test/me.pdf"}


class Webhook:
    """An HTTP server on a free loopback port answering 200 to every POST and keeping the JSON bodies."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                hook.received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class PrivateMariaDB:
    """A MariaDB of this test's own (LocalMariaDB) on a free port with its data under `directory`.

    Never the shared server at 3306: `down()` here stops only this one. The application user and database
    come from the shared settings' user with a database name of our own; every migration is applied.
    """

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.address = dataclasses.replace(settings.mysql, port=free_port(), database="jobstream_e2e")
        self.database = self.address.database
        self.server = LocalMariaDB(self.address, directory)

    def up(self) -> None:
        # stack.processes.spawn hands back a Popen that LocalMariaDB drops while the server runs (it runs detached,
        # in a session of its own): that Popen's "still running" ResourceWarning is expected, not a leak.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            self.server.up()

    def migrate(self) -> None:
        with connect(self.address, self.database) as connection:
            apply_migrations(connection, load_migrations())

    def down(self) -> None:
        self.server.down()

    def answers(self) -> bool:
        return self.server.version() is not None

    def url(self) -> str:
        return mysql_url(self.address, self.database)


@contextlib.contextmanager
def private_mariadb(settings: Settings, directory: Path) -> Iterator[PrivateMariaDB]:
    server = PrivateMariaDB(settings, directory)
    try:
        server.up()
        server.migrate()
        yield server
    finally:
        server.down()


def count_ids(address: MySQLAddress, database: str, table: str, column: str, ids: list[str]) -> tuple[int, int]:
    """(rows, distinct ids) of `table` whose `column` is one of `ids`."""
    total, distinct = 0, 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        ((rows_, distinct_),) = rows(
            address, database, f"SELECT COUNT(*), COUNT(DISTINCT {column}) FROM {table} WHERE {column} IN %s", (chunk,)
        )
        total += int(rows_)
        distinct += int(distinct_)
    return total, distinct


def dirty_count(address: MySQLAddress, database: str, table: str, column: str, ids: list[str]) -> int:
    """Rows of `ids` visible READ UNCOMMITTED: those written by open transactions too."""
    with connect(address, database) as connection, connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        total = 0
        for start in range(0, len(ids), 1000):
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} IN %s", (ids[start : start + 1000],))
            total += int(cursor.fetchone()[0])
        return total
