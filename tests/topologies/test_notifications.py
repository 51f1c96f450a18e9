"""The notification topology against real Kafka, a real SMTP server and real HTTP webhooks on loopback.

One topology (both stages, as subprocesses in a consumer group of their own) serves the module; every test
uses notification ids and addresses of its own and filters shared topics by them. The SMTP server refuses
addresses by prefix: ``flaky<N>-`` with 451 the first N times, ``sluggish<N>-`` the same after 0.9 s,
``down-`` always with 451, ``gone-`` always with 550.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from confluent_kafka import Consumer, TopicPartition

from jobstream.backoff import Backoff
from jobstream.consumer_offsets import commit_at_end, end_offsets
from jobstream.errors import SettingsError
from jobstream.settings import PROJECT_ROOT, KafkaClientSettings, Settings
from schemas import examples
from schemas.avro import load_event_schemas
from schemas.topics import (
    NOTIFICATION_DEAD_LETTER,
    NOTIFICATION_OUTCOME,
    NOTIFICATION_REQUESTED,
    NOTIFICATION_RETRY,
    USER_REGISTERED,
)
from stack.smtp import SmtpCapture, captured_mail, wait_for_mail
from tests.kafka_helpers import consume_until, header, idempotent_producer
from topologies.notifications.delivery import DeliveryPolicy
from topologies.notifications.recipients import Account, enrich
from topologies.notifications.templates import TEMPLATES, TemplateError, greeting, render

EVENTS = load_event_schemas()
REQUESTED = EVENTS["notification_requested"]
OUTCOME = EVENTS["notification_outcome"]

MAX_ATTEMPTS = 3
INLINE_BUDGET_S = 1.0
SLOW_WEBHOOK_S = 8.0
_PARAM_NAMES = ("name", "recipient_name", "job_title", "reason", "stage")


class RefusingPolicy:
    """451 for ``down-`` addresses, and for ``flaky<N>-`` addresses the first N times; counts every call."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, envelope) -> str | None:
        address = envelope.rcpt_tos[0]
        with self._lock:
            self.calls[address] += 1
            seen = self.calls[address]
        if address.startswith("down-"):
            return "451 4.3.0 mailbox temporarily unavailable"
        if address.startswith("gone-"):
            return "550 5.1.1 no such mailbox"
        flaky = re.match(r"(flaky|sluggish)(\d+)-", address)
        if flaky and seen <= int(flaky.group(2)):
            if flaky.group(1) == "sluggish":
                time.sleep(0.9)
            return "451 4.3.0 try again later"
        return None


@dataclass
class Webhook:
    port: int
    received: list[tuple[str, dict, float]] = field(default_factory=list)
    started: list[tuple[str, dict, float]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, notification_id: str) -> list[tuple[str, dict]]:
        return [(path, body) for path, body, _ in self.received if body["notification_id"] == notification_id]


def _webhook_handler(hook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            hook.started.append((self.path, body, time.monotonic()))
            if "slow" in body["to"]:
                time.sleep(SLOW_WEBHOOK_S)
            hook.received.append((self.path, body, time.monotonic()))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def refusals() -> RefusingPolicy:
    return RefusingPolicy()


@pytest.fixture(scope="module")
def smtp(tmp_path_factory, refusals) -> Iterator[SmtpCapture]:
    with SmtpCapture(tmp_path_factory.mktemp("mail"), refuse=refusals) as capture:
        yield capture


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _webhook_handler(hook))
    server.daemon_threads = True
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


def _end_offsets(kafka: KafkaClientSettings, topics: list[str]) -> list[TopicPartition]:
    return [TopicPartition(topic, p, high) for topic in topics for p, high in end_offsets(kafka, topic).items()]


@dataclass
class Topology:
    settings: Settings
    smtp: SmtpCapture
    webhook: Webhook
    metrics_port: int
    start_offsets: list[TopicPartition]
    producer: object

    def request(
        self,
        channel: str = "email",
        address: str | None = None,
        template: str = "welcome",
        params: dict[str, str] | None = None,
        notification_id: str | None = None,
        partition: int | None = None,
        recipient_id: str | None = None,
    ) -> dict:
        notification_id = notification_id or f"n-{uuid.uuid4().hex}"
        record = {
            "notification_id": notification_id,
            "recipient_id": recipient_id or f"r-{notification_id}",
            "channel": channel,
            "address": f"{notification_id}@example.test" if address is None else address,
            "template": template,
            "params": {"name": "Ada"} if params is None else params,
            "requested_at": int(time.time() * 1000),
        }
        self.produce(REQUESTED.encode(record), record["recipient_id"], partition)
        return record

    def produce(self, value: bytes, key: str, partition: int | None = None, headers: list | None = None) -> None:
        extra = {} if partition is None else {"partition": partition}
        self.producer.produce(NOTIFICATION_REQUESTED, value=value, key=key, headers=headers or [], **extra)
        assert self.producer.flush(10) == 0

    def register(self, display_name: str) -> dict:
        """A user.registered for a new user, as the outbox relay publishes it (keyed by user id)."""
        user = dict(examples.user_registered(f"u-{uuid.uuid4().hex}", display_name=display_name))
        user["email"] = f"{user['user_id']}@example.test"
        self.producer.produce(USER_REGISTERED, value=EVENTS["user_registered"].encode(user), key=user["user_id"])
        assert self.producer.flush(10) == 0
        return user

    def consumer(self, topic: str) -> Consumer:
        consumer = Consumer({**self.settings.kafka.client_config(), "group.id": "unused", "log_level": 0})
        consumer.assign([tp for tp in self.start_offsets if tp.topic == topic])
        return consumer

    def outcomes(self, notification_id: str, count: int = 1, timeout_s: float = 20.0) -> list[dict]:
        consumer = self.consumer(NOTIFICATION_OUTCOME)
        try:
            messages = consume_until(
                consumer,
                lambda kept: len(kept) >= count,
                timeout_s,
                keep=lambda m: OUTCOME.decode(m.value())["notification_id"] == notification_id,
            )
        finally:
            consumer.close()
        return [OUTCOME.decode(m.value()) for m in messages]

    def mail_for(self, notification_id: str, count: int = 1, timeout_s: float = 20.0) -> list:
        return wait_for_mail(
            self.smtp.directory,
            lambda m: m["X-Jobstream-Notification-Id"] == notification_id,
            count=count,
            timeout_s=timeout_s,
        )


def _free_port_pair() -> int:
    """A free port whose successor is free too: the retry stage serves its metrics on the fresh stage's port + 1."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


@pytest.fixture(scope="module")
def topology(settings, smtp, webhook, tmp_path_factory) -> Iterator[Topology]:
    group = f"test-notifications-{uuid.uuid4().hex[:8]}"
    commit_at_end(settings.kafka, group, [NOTIFICATION_REQUESTED, USER_REGISTERED])
    commit_at_end(settings.kafka, f"{group}.retry", [NOTIFICATION_RETRY])
    start_offsets = _end_offsets(
        settings.kafka, [NOTIFICATION_OUTCOME, NOTIFICATION_DEAD_LETTER, "dead_letter", NOTIFICATION_RETRY]
    )
    metrics_port = _free_port_pair()
    local_dir = tmp_path_factory.mktemp("local")
    env = {
        **os.environ,
        # Its groups are not the identity's own: it reaches Kafka as the tests do.
        **settings.kafka.environment(),
        "JOBSTREAM_LOCAL_DIR": str(local_dir),
        "JOBSTREAM_NOTIFICATIONS_GROUP": group,
        "JOBSTREAM_SMTP_PORT": str(smtp.port),
        "JOBSTREAM_SMS_WEBHOOK_URL": webhook.url("/sms"),
        "JOBSTREAM_PUSH_WEBHOOK_URL": webhook.url("/push"),
        "JOBSTREAM_NOTIFICATIONS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "JOBSTREAM_NOTIFICATIONS_BACKOFF_BASE_MS": "200",
        "JOBSTREAM_NOTIFICATIONS_BACKOFF_CAP_MS": "1000",
        "JOBSTREAM_NOTIFICATIONS_INLINE_BUDGET_MS": str(int(INLINE_BUDGET_S * 1000)),
        "JOBSTREAM_NOTIFICATIONS_PROVIDER_TIMEOUT_MS": "1000",
        "JOBSTREAM_NOTIFICATIONS_METRICS_PORT": str(metrics_port),
    }
    processes = []
    logs = []
    for stage in ("fresh", "retry"):
        log = open(local_dir / f"{stage}.log", "w")  # noqa: SIM115 (closed after the processes stop)
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "topologies.notifications", "--stage", stage],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    producer = idempotent_producer(settings.kafka)
    running = Topology(settings, smtp, webhook, metrics_port, start_offsets, producer)
    try:
        # Ready once a probe goes all the way through; this also proves the group starts at the end.
        probe = running.request()
        if not running.mail_for(probe["notification_id"], timeout_s=60):
            logs_text = "\n".join((local_dir / f"{stage}.log").read_text()[-3000:] for stage in ("fresh", "retry"))
            pytest.fail(f"the notification topology delivered no probe within 60 s:\n{logs_text}")
        yield running
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _count_mail(smtp: SmtpCapture, notification_id: str) -> int:
    return sum(1 for m in captured_mail(smtp.directory) if m["X-Jobstream-Notification-Id"] == notification_id)


def test_email_is_rendered_and_arrives_in_the_smtp_server_once(topology):
    request = topology.request(
        template="application_received",
        params={"recipient_name": "Grace", "job_title": "Compiler Engineer"},
    )
    mail = topology.mail_for(request["notification_id"])
    assert len(mail) == 1
    assert mail[0]["To"] == request["address"]
    assert mail[0]["Subject"] == "We received your application for Compiler Engineer"
    assert mail[0]["Message-ID"] == f"<{request['notification_id']}@jobstream.local>"
    body = mail[0].get_content()
    assert body.splitlines()[0] == "Hello Grace,"  # no account in state: the name the request carried
    assert "applying to Compiler Engineer." in body
    [outcome] = topology.outcomes(request["notification_id"])
    assert (outcome["status"], outcome["attempts"], outcome["channel"]) == ("sent", 1, "email")
    assert outcome["latency_ms"] >= 0


def test_a_redelivered_notification_is_delivered_once(topology):
    first = topology.request()
    notification_id = first["notification_id"]
    topology.produce(REQUESTED.encode(first), first["recipient_id"])
    assert len(topology.mail_for(notification_id)) == 1
    # A third copy after the delivery, and a marker behind it on the same partition (same key).
    topology.produce(REQUESTED.encode(first), first["recipient_id"])
    marker = topology.request()
    topology.produce(REQUESTED.encode({**marker, "recipient_id": first["recipient_id"]}), first["recipient_id"])
    assert topology.mail_for(marker["notification_id"])
    assert _count_mail(topology.smtp, notification_id) == 1
    outcomes = topology.outcomes(notification_id, count=2, timeout_s=3)
    assert [o["status"] for o in outcomes] == ["sent"]


def test_an_smtp_refusal_is_retried_then_delivered_once(topology, refusals):
    request = topology.request(address=f"flaky2-{uuid.uuid4().hex}@example.test")
    [outcome] = topology.outcomes(request["notification_id"])
    assert outcome["status"] == "sent"
    assert outcome["attempts"] == 3
    assert refusals.calls[request["address"]] == 3
    assert len(topology.mail_for(request["notification_id"])) == 1


def test_a_failure_that_outlasts_the_inline_budget_is_retried_from_the_retry_topic(topology, refusals):
    # The server takes 0.9 s to refuse: no time is left in the 1 s budget, so the retry stage sends it.
    request = topology.request(address=f"sluggish1-{uuid.uuid4().hex}@example.test")
    [outcome] = topology.outcomes(request["notification_id"])
    assert (outcome["status"], outcome["attempts"]) == ("sent", 2)
    consumer = topology.consumer(NOTIFICATION_RETRY)
    try:
        [queued] = consume_until(
            consumer,
            lambda kept: len(kept) >= 1,
            10,
            keep=lambda m: REQUESTED.decode(m.value())["notification_id"] == request["notification_id"],
        )
    finally:
        consumer.close()
    assert header(queued, "jobstream-attempts") == b"1"
    assert b"451" in header(queued, "jobstream-error")
    assert int(header(queued, "jobstream-not-before-ms")) > request["requested_at"]
    assert refusals.calls[request["address"]] == 2
    assert len(topology.mail_for(request["notification_id"])) == 1


def test_after_max_attempts_a_notification_is_dead_lettered_with_its_error(topology, refusals):
    request = topology.request(address=f"down-{uuid.uuid4().hex}@example.test")
    consumer = topology.consumer(NOTIFICATION_DEAD_LETTER)
    try:
        [dead] = consume_until(
            consumer,
            lambda kept: len(kept) >= 1,
            30,
            keep=lambda m: REQUESTED.decode(m.value())["notification_id"] == request["notification_id"],
        )
    finally:
        consumer.close()
    assert b"451" in header(dead, "jobstream-error")
    assert header(dead, "jobstream-attempts") == str(MAX_ATTEMPTS).encode()
    assert dead.key() == request["recipient_id"].encode()
    [outcome] = topology.outcomes(request["notification_id"])
    assert (outcome["status"], outcome["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert "451" in outcome["error"]
    assert refusals.calls[request["address"]] == MAX_ATTEMPTS
    assert _count_mail(topology.smtp, request["notification_id"]) == 0


def test_a_permanent_refusal_is_dead_lettered_without_retrying(topology, refusals):
    request = topology.request(address=f"gone-{uuid.uuid4().hex}@example.test")
    [outcome] = topology.outcomes(request["notification_id"])
    assert (outcome["status"], outcome["attempts"]) == ("failed", 1)
    assert "550" in outcome["error"]
    assert refusals.calls[request["address"]] == 1


def test_sms_and_push_are_posted_to_their_webhooks(topology):
    sms = topology.request(
        channel="sms",
        address="+15550100",
        template="stage_changed",
        params={"job_title": "SRE", "stage": "interview"},
    )
    push = topology.request(
        channel="push",
        address="device-token-1",
        template="new_applicant",
        params={"job_title": "SRE"},
    )
    for request in (sms, push):
        [outcome] = topology.outcomes(request["notification_id"])
        assert (outcome["status"], outcome["channel"]) == ("sent", request["channel"])
    [(sms_path, sms_body)] = topology.webhook.bodies(sms["notification_id"])
    assert sms_path == "/sms"
    assert sms_body["to"] == "+15550100"
    assert sms_body["body"] == "Jobstream: your application for SRE has moved to the interview stage."
    [(push_path, push_body)] = topology.webhook.bodies(push["notification_id"])
    assert push_path == "/push"
    assert (push_body["title"], push_body["body"]) == ("New applicant", "A new candidate applied to SRE.")


def test_a_slow_provider_does_not_delay_another_partitions_email_beyond_the_bound(topology):
    slow = topology.request(channel="sms", address=f"slow-{uuid.uuid4().hex}", partition=0)
    deadline = time.monotonic() + 20
    while not any(body["notification_id"] == slow["notification_id"] for _, body, _ in topology.webhook.started):
        assert time.monotonic() < deadline, "the slow SMS never reached its webhook"
        time.sleep(0.02)
    produced_at = time.monotonic()
    email = topology.request(partition=3)
    assert topology.mail_for(email["notification_id"], timeout_s=SLOW_WEBHOOK_S)
    waited = time.monotonic() - produced_at
    # The webhook holds the SMS for 8 s; the topology lets it hold the consumer for the 1 s budget only.
    assert waited < INLINE_BUDGET_S + 2.5, f"email waited {waited:.1f} s behind a slow SMS"


def test_a_poison_message_goes_to_dead_letter_and_the_next_one_is_delivered(topology):
    key = f"poison-{uuid.uuid4().hex}"
    topology.produce(b"\x00not avro at all", key, partition=1, headers=[("origin", b"test")])
    after = topology.request(partition=1)
    assert topology.mail_for(after["notification_id"])
    consumer = topology.consumer("dead_letter")
    try:
        [dead] = consume_until(consumer, lambda kept: len(kept) >= 1, 20, keep=lambda m: m.key() == key.encode())
    finally:
        consumer.close()
    assert dead.value() == b"\x00not avro at all"
    assert b"C3 01" in header(dead, "jobstream-dead-letter-reason")
    assert header(dead, "jobstream-source-topic") == NOTIFICATION_REQUESTED.encode()
    assert header(dead, "origin") == b"test"


def test_an_unknown_template_is_dead_lettered_without_retrying(topology):
    request = topology.request(template="no_such_template")
    [outcome] = topology.outcomes(request["notification_id"])
    assert outcome["status"] == "failed"
    assert outcome["attempts"] == 0
    assert "no_such_template" in outcome["error"]


def test_a_request_to_a_registered_user_greets_them_by_display_name_at_their_own_address(topology):
    user = topology.register("Grace Hopper")
    # Own email (empty address), as the acceptance topology sends it; the user event came first, on its partition.
    request = topology.request(
        address="",
        template="stage_changed",
        params={"job_title": "Compiler Engineer", "stage": "interview"},
        recipient_id=user["user_id"],
    )
    [mail] = topology.mail_for(request["notification_id"])
    assert mail["To"] == user["email"]
    # A long subject is folded on the wire; unfolded, it is one line.
    assert mail["Subject"].strip() == "Your application for Compiler Engineer has moved to the interview stage"
    body = mail.get_content()
    assert body.splitlines()[0] == "Hello Grace Hopper,"
    assert user["user_id"] not in body


def test_a_renamed_user_is_greeted_by_the_new_name(topology):
    user = topology.register("Ada")
    renamed = {**user, "event_id": str(uuid.uuid4()), "display_name": "Ada Lovelace"}
    topology.producer.produce(USER_REGISTERED, value=EVENTS["user_registered"].encode(renamed), key=user["user_id"])
    assert topology.producer.flush(10) == 0
    time.sleep(1)  # a join, not a barrier: a request read before the rename would still get the old name
    request = topology.request(
        address="", template="application_received", params={"job_title": "Analyst"}, recipient_id=user["user_id"]
    )
    [mail] = topology.mail_for(request["notification_id"])
    assert mail.get_content().splitlines()[0] == "Hello Ada Lovelace,"


def test_a_request_for_a_user_not_yet_in_state_still_goes_out_with_a_neutral_greeting(topology):
    unknown = f"u-{uuid.uuid4().hex}"
    request = topology.request(
        template="application_rejected",
        params={"job_title": "Compiler Engineer", "reason": "the job is closed"},
        recipient_id=unknown,
    )
    [mail] = topology.mail_for(request["notification_id"])
    assert mail["To"] == request["address"]
    body = mail.get_content()
    assert body.splitlines()[0] == "Hello," and unknown not in body
    # Nothing to write to at all: push to the user's id, as applications without an email always went.
    own = topology.request(address="", template="application_received", params={"job_title": "SRE"})
    [outcome] = topology.outcomes(own["notification_id"])
    assert (outcome["status"], outcome["channel"]) == ("sent", "push")
    [(path, body_sent)] = topology.webhook.bodies(own["notification_id"])
    assert (path, body_sent["to"]) == ("/push", own["recipient_id"])


def test_metrics_count_deliveries_by_channel(topology):
    request = topology.request()
    assert topology.mail_for(request["notification_id"])
    topology.outcomes(request["notification_id"])
    text = urllib.request.urlopen(f"http://127.0.0.1:{topology.metrics_port}/metrics", timeout=5).read().decode()
    delivered = re.search(r'^jobstream_notifications_delivered_total\{channel="email"\} (\S+)$', text, re.M)
    assert delivered and float(delivered.group(1)) >= 1
    assert re.search(r'^jobstream_notification_delivery_latency_seconds_count\{channel="email"\} [1-9]', text, re.M)


@pytest.mark.unit
@pytest.mark.parametrize("channel", ["email", "sms", "push"])
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_on_every_channel(name, channel):
    params = {field: f"<{field}>" for field in _PARAM_NAMES}
    rendered = render(name, channel, params)
    assert rendered.body and "{" not in rendered.body
    assert bool(rendered.title) == (channel != "sms")


@pytest.mark.unit
def test_a_template_missing_a_param_names_it():
    with pytest.raises(TemplateError, match="stage"):
        render("stage_changed", "email", {"recipient_name": "A", "job_title": "B"})


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "expected"), [("Ada", "Hello Ada,"), ("  ", "Hello,"), ("", "Hello,"), (None, "Hello,")]
)
def test_the_greeting_names_the_recipient_or_nobody(name, expected):
    assert greeting(name) == expected


@pytest.mark.unit
@pytest.mark.parametrize("stage", ["reviewed", "interview", "offer", "hired", "declined"])
def test_each_stage_reads_as_news_in_the_stage_template(stage):
    rendered = render("stage_changed", "email", {"job_title": "SRE", "stage": stage})
    assert rendered.title.startswith("Your application for SRE ") and "{" not in rendered.title
    assert rendered.body.startswith("Hello,\n\nYour application for SRE ")


def _request(**fields):
    return dict(examples.notification_requested("user-1", **{"channel": "email", "address": "", **fields}))


@pytest.mark.unit
def test_enrichment_joins_in_the_display_name_and_own_address():
    enriched = enrich(_request(params={"job_title": "SRE"}), Account("ada@example.test", "Ada"))
    assert (enriched["channel"], enriched["address"]) == ("email", "ada@example.test")
    assert enriched["params"] == {"job_title": "SRE", "recipient_name": "Ada"}


@pytest.mark.unit
def test_enrichment_keeps_an_address_the_request_carries_and_prefers_the_accounts_name():
    request = _request(address="old@example.test", params={"recipient_name": "Old"})
    enriched = enrich(request, Account("new@example.test", "New"))
    assert (enriched["address"], enriched["params"]["recipient_name"]) == ("old@example.test", "New")


@pytest.mark.unit
def test_enrichment_without_an_account_falls_back_to_push_to_the_recipient_and_no_name():
    enriched = enrich(_request(params={"job_title": "SRE"}), None)
    assert (enriched["channel"], enriched["address"]) == ("push", "user-1")
    assert "recipient_name" not in enriched["params"]
    addressed = enrich(_request(address="a@x.test"), None)
    assert (addressed["channel"], addressed["address"]) == ("email", "a@x.test")


@pytest.mark.unit
def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    policy = DeliveryPolicy(max_attempts=9, backoff=Backoff(base_s=1, cap_s=8), inline_budget_s=1, provider_timeout_s=1)
    rng = random.Random(7)
    for failed, step in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 8)]:
        delays = [policy.backoff.delay_s(failed, rng) for _ in range(200)]
        assert step / 2 <= min(delays) and max(delays) <= step
        assert max(delays) - min(delays) > step / 4  # jittered, not fixed


@pytest.mark.unit
def test_a_bad_notification_setting_names_its_variable():
    with pytest.raises(SettingsError, match="JOBSTREAM_SMS_WEBHOOK_URL"):
        Settings.from_env({"JOBSTREAM_SMS_WEBHOOK_URL": "ftp://nope"})
    with pytest.raises(SettingsError, match="JOBSTREAM_NOTIFICATIONS_BACKOFF_CAP_MS"):
        Settings.from_env(
            {"JOBSTREAM_NOTIFICATIONS_BACKOFF_BASE_MS": "500", "JOBSTREAM_NOTIFICATIONS_BACKOFF_CAP_MS": "100"}
        )
