"""The whole platform (the real Procfile under `stack.supervisor`) in a namespace of its own, a steady load of
applications through its gateway, and the faults production causes: SIGSTOP, SIGKILL, a broker gone.

The platform gets consumer groups committed at the current end of their inputs, a scratch database, a Redis
database, a local directory and free ports of its own, so it decides only the applications its load sends and
touches nothing `make run` shows. Each process reaches Kafka as its own service identity, under its production
ACLs (its groups are inside its identity's namespace); the scratch database and Redis database are the admin's.

The load is a few threads posting unique (candidate, job) applications at a steady rate, each retried with its
Idempotency-Key after a 503, 429 or a dropped connection, as a client would; every 202 is remembered, and
`converged` proves each of them decided exactly once and visible in MySQL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pymysql
import redis

from jobstream.consumer_offsets import commit_at_end
from jobstream.settings import PROJECT_ROOT, KafkaClientSettings, Settings
from stack.processes import free_port
from stack.supervisor import read_state
from tests.e2e_harness import APPLICATION_BODY, MYSQL_SINK_TOPICS, REDIS_SINK_TOPICS, count_ids, mysql_url, wait_for
from tests.topology_harness import EVENTS, TopicReader

GROUP_INPUTS = {
    "JOBSTREAM_ACCEPTANCE_GROUP": ["job.lifecycle", "application.created", "application.stage_changed"],
    "JOBSTREAM_ANALYTICS_GROUP": ["application.decided", "job.viewed", "job.lifecycle"],
    "JOBSTREAM_NOTIFICATIONS_GROUP": ["notification.requested"],
    "JOBSTREAM_SINKS_MYSQL_GROUP": MYSQL_SINK_TOPICS,
    "JOBSTREAM_SINKS_REDIS_GROUP": REDIS_SINK_TOPICS,
}
PORTS = (
    "JOBSTREAM_GATEWAY_PORT",
    "JOBSTREAM_GATEWAY_METRICS_PORT",
    "JOBSTREAM_ACCEPTANCE_METRICS_PORT",
    "JOBSTREAM_ANALYTICS_METRICS_PORT",
    "JOBSTREAM_SINKS_MYSQL_METRICS_PORT",
    "JOBSTREAM_SINKS_REDIS_METRICS_PORT",
    "JOBSTREAM_SUPERVISOR_METRICS_PORT",
    "JOBSTREAM_OUTBOX_METRICS_PORT",
    "JOBSTREAM_PROMETHEUS_PORT",
    "JOBSTREAM_SMTP_PORT",
    "JOBSTREAM_WEB_PORT",
)


def default_groups(settings: Settings) -> dict[str, str]:
    """Each stage's default consumer group, by the variable that overrides it."""
    return {
        "JOBSTREAM_ACCEPTANCE_GROUP": settings.acceptance.consumer_group,
        "JOBSTREAM_ANALYTICS_GROUP": settings.analytics.topology.consumer_group,
        "JOBSTREAM_NOTIFICATIONS_GROUP": settings.notifications.topology.consumer_group,
        "JOBSTREAM_SINKS_MYSQL_GROUP": settings.sinks.mysql_group,
        "JOBSTREAM_SINKS_REDIS_GROUP": settings.sinks.redis_group,
    }


class Platform:
    """`python -m stack.supervisor --procfile Procfile` with an environment of its own (see the module docstring)."""

    def __init__(
        self, settings: Settings, workdir: Path, database: str, redis_db: int, kafka: KafkaClientSettings
    ) -> None:
        self.settings = settings
        self.workdir = workdir
        self.database = database
        self.kafka = kafka
        self.local_dir = workdir / "local"
        self.redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
        ports = {name: str(free_port()) for name in PORTS}
        # The retry stage serves its metrics on the fresh stage's port + 1.
        notifications_port = _free_pair()
        webhooks = free_port()
        # Groups of its own, each inside its identity's namespace (`<default group>.chaos-<hex>`): every process
        # reaches Kafka as its service identity, with the ACLs it has in production.
        run = uuid.uuid4().hex[:8]
        self.groups = {variable: f"{default_groups(settings)[variable]}.chaos-{run}" for variable in GROUP_INPUTS}
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("JOBSTREAM_KAFKA_")}
        self.env = {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "JOBSTREAM_LOCAL_DIR": str(self.local_dir),
            "JOBSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "JOBSTREAM_MYSQL_URL": mysql_url(settings.mysql, database),
            "JOBSTREAM_REDIS_URL": self.redis_url,
            "JOBSTREAM_NOTIFICATIONS_METRICS_PORT": str(notifications_port),
            "JOBSTREAM_SMS_WEBHOOK_URL": f"http://127.0.0.1:{webhooks}/sms",
            "JOBSTREAM_PUSH_WEBHOOK_URL": f"http://127.0.0.1:{webhooks}/push",
            "JOBSTREAM_ACCESS_TOKEN_TTL_S": "3600",
            **ports,
            **self.groups,
        }
        self.gateway_url = f"http://127.0.0.1:{ports['JOBSTREAM_GATEWAY_PORT']}"
        self.web_url = f"http://127.0.0.1:{ports['JOBSTREAM_WEB_PORT']}"
        self.supervisor: subprocess.Popen[bytes] | None = None

    @property
    def acceptance_group(self) -> str:
        return self.groups["JOBSTREAM_ACCEPTANCE_GROUP"]

    def start(self, timeout_s: float = 120) -> Platform:
        for variable, topics in GROUP_INPUTS.items():
            commit_at_end(self.kafka, self.groups[variable], topics)
        commit_at_end(self.kafka, self.groups["JOBSTREAM_NOTIFICATIONS_GROUP"] + ".retry", ["notification.retry"])
        with redis.Redis.from_url(self.redis_url) as client:
            client.flushdb()
        self.local_dir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "supervisor.out", "ab") as out:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-m", "stack.supervisor", "--procfile", str(PROJECT_ROOT / "Procfile")],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._gateway_answers, timeout_s, "the platform's gateway to answer /healthz")
        wait_for(lambda: not self.not_running(), timeout_s, "every process to run")
        return self

    def stop(self) -> None:
        if self.supervisor is None or self.supervisor.poll() is not None:
            return
        self.supervisor.send_signal(signal.SIGTERM)
        try:
            self.supervisor.wait(40)
        except subprocess.TimeoutExpired:
            self.supervisor.kill()
            self.supervisor.wait(10)

    def processes(self) -> dict[str, dict[str, Any]]:
        state = read_state(self.local_dir)
        return {} if state is None else dict(state["processes"])

    def pid(self, name: str) -> int:
        pid = self.processes()[name]["pid"]
        assert isinstance(pid, int), f"{name} is not running: {self.processes()[name]}"
        return pid

    def not_running(self) -> dict[str, str]:
        """Each process that is not running now, with its state."""
        assert self.supervisor is not None and self.supervisor.poll() is None, self.log_tail("supervisor")
        return {name: status["state"] for name, status in self.processes().items() if status["state"] != "running"}

    def restarts(self) -> dict[str, int]:
        return {name: status["restarts"] for name, status in self.processes().items() if status["restarts"]}

    def supervisor_log(self) -> str:
        path = self.local_dir / "logs" / "supervisor.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.local_dir / "logs" / f"{name}.log"
        return f"--- {name} ---\n" + (path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)")

    def _gateway_answers(self) -> bool:
        assert self.supervisor is not None and self.supervisor.poll() is None, self.log_tail("supervisor")
        try:
            return httpx.get(f"{self.gateway_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _free_pair() -> int:
    """A free port whose successor is free too."""
    while True:
        port = free_port()
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.bind(("127.0.0.1", port + 1))
            return port


@dataclass
class Attempt:
    at: float
    status: int | str


@dataclass
class Load:
    """Unique applications at `rate_per_s` from `workers` threads; each retried with its key until a 202."""

    base_url: str
    candidates: list[dict[str, str]]
    jobs: list[str]
    rate_per_s: float = 12.0
    workers: int = 4
    give_up_after_s: float = 180.0
    accepted: dict[str, str] = field(default_factory=dict)  # application_id -> job_id
    attempts: list[Attempt] = field(default_factory=list)
    abandoned: int = 0
    # What stopped a worker: an answer no client should get (a 4xx other than 408, 409, 429).
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._pairs = iter(itertools.product(self.jobs, self.candidates))

    def start(self) -> Load:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._work, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.give_up_after_s + 30)

    def accepted_ids(self) -> set[str]:
        """Every application answered 202 so far; AssertionError if a worker met an answer it should not get."""
        with self._lock:
            assert not self.errors, self.errors[:3]
            return set(self.accepted)

    def statuses(self, since: float, until: float) -> Counter[int | str]:
        with self._lock:
            return Counter(a.status for a in self.attempts if since <= a.at < until)

    def _next(self) -> tuple[str, dict[str, str]] | None:
        with self._lock:
            return next(self._pairs, None)

    def _work(self) -> None:
        try:
            self._loop()
        except BaseException as error:
            with self._lock:
                self.errors.append(repr(error))
            raise

    def _loop(self) -> None:
        interval = self.workers / self.rate_per_s
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                pair = self._next()
                if pair is None:
                    return
                self._apply(client, *pair)
                self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _apply(self, client: httpx.Client, job_id: str, candidate: dict[str, str]) -> None:
        key = f"chaos-{uuid.uuid4().hex}"
        headers = {"Authorization": f"Bearer {candidate['token']}", "Idempotency-Key": key}
        deadline = time.monotonic() + self.give_up_after_s
        while time.monotonic() < deadline:
            try:
                response = client.post(f"/v1/jobs/{job_id}/applications", json=APPLICATION_BODY, headers=headers)
                status: int | str = response.status_code
            except httpx.HTTPError as error:
                response, status = None, type(error).__name__
            with self._lock:
                self.attempts.append(Attempt(time.monotonic(), status))
            if response is not None and response.status_code == 202:
                with self._lock:
                    self.accepted[response.json()["application_id"]] = job_id
                return
            if response is not None and response.status_code < 500 and response.status_code not in (408, 409, 429):
                raise AssertionError(f"application refused: {response.status_code} {response.text}")
            time.sleep(0.5)
        with self._lock:
            self.abandoned += 1


def seed(platform: Platform, candidates: int, jobs: int) -> tuple[list[dict[str, str]], list[str]]:
    """An employer with `jobs` open jobs (visible in MySQL) and `candidates` candidates with access tokens."""
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:

        def register(role: str) -> dict[str, Any]:
            body = {
                "email": f"{role}-{uuid.uuid4().hex[:12]}@chaos.test",
                "password": "correct horse battery staple",
                "display_name": f"Chaos {role}",
                "role": role,
            }
            response = client.post("/v1/auth/register", json=body)
            assert response.status_code == 201, response.text
            return dict(response.json())

        employer = register("employer")
        headers = {"Authorization": f"Bearer {employer['access_token']}"}
        job_ids = []
        for number in range(jobs):
            posted = client.post(
                "/v1/jobs",
                json={"title": f"Chaos job {number}", "description": "Survive faults.", "location": "Remote"},
                headers=headers,
            )
            assert posted.status_code == 202, posted.text
            job_ids.append(posted.json()["job_id"])
        people = [
            {"user_id": session["user"]["user_id"], "token": session["access_token"]}
            for session in (register("candidate") for _ in range(candidates))
        ]
    wait_for(
        lambda: count_ids(platform.settings.mysql, platform.database, "jobs", "job_id", job_ids)[1] == len(job_ids),
        90,
        "the seeded jobs in MySQL",
    )
    return people, job_ids


class Decisions:
    """application.decided as the platform's acceptance group wrote it, read from before the load began."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._reader = TopicReader(platform.kafka, "application.decided", EVENTS["application_decided"])
        self.counts: Counter[str] = Counter()

    def close(self) -> None:
        self._reader.close()

    def read(self, wanted: set[str], timeout_s: float) -> None:
        group = self._platform.acceptance_group.encode()

        def ours(output: Any) -> bool:
            if output.headers.get("jobstream-topology") != group:
                return False
            self.counts[output.record["application_id"]] += 1
            return False  # counted here; nothing needs keeping

        self._reader.read(ours, lambda kept: wanted <= set(self.counts), timeout_s)


def converged(platform: Platform, load: Load, decisions: Decisions, timeout_s: float = 60) -> float:
    """Every 202 so far decided exactly once and in MySQL within `timeout_s`; returns the seconds it took."""
    started = time.monotonic()
    wanted = load.accepted_ids()
    decisions.read(wanted, timeout_s)
    missing = wanted - set(decisions.counts)
    assert not missing, f"{len(missing)} of {len(wanted)} accepted applications not decided: {sorted(missing)[:3]}"
    doubled = [app for app in wanted if decisions.counts[app] != 1]
    assert not doubled, f"decided more than once: {doubled[:5]}"
    ids = sorted(wanted)

    def landed() -> bool:
        try:
            rows, distinct = count_ids(
                platform.settings.mysql, platform.database, "applications", "application_id", ids
            )
        except pymysql.MySQLError:
            return False
        return rows == distinct == len(ids)

    remaining = max(1.0, timeout_s - (time.monotonic() - started))
    wait_for(landed, remaining, f"all {len(ids)} accepted applications in MySQL")
    return time.monotonic() - started
