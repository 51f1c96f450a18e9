"""The notification topology: ``notification.requested`` -> email, SMS and push, each notification id once.

``python -m topologies.notifications --stage fresh`` and ``--stage retry`` run the two stages below, each its own
process in its own consumer group, so neither stalls the other nor the acceptance topology, and the supervisor
restarts each by itself.

Names and addresses: the fresh stage also reads ``user.registered`` and keeps each user's latest account in Quix state
(a stream-table join, co-partitioned with ``notification.requested`` by user id; `topologies.notifications.recipients`),
so a request is delivered with its recipient's display name (``recipient_name``) and, when its address is empty, the
recipient's own email, or as push to the recipient's id while the account is not in state yet. It re-produces the
enriched request to the retry and dead-letter topics, so the retry stage needs no state. Its state is at-least-once
like its outputs: a redelivered user event writes the same account again.

Delivery semantics: at-least-once with dedup. After a provider accepts a notification its id is written to a
Redis key with a TTL (``jobstream:notifications:delivered:<id>``); every request checks that key first, so a
redelivered or re-produced request is skipped. Redis rather than Quix state, because a Quix state write only
becomes durable at the next checkpoint (seconds), while the Redis write follows the send within milliseconds:
the crash window between a send and its record is that short. A crash inside it re-sends once; the email's
Message-ID and the webhook's Idempotency-Key are the notification id, so receivers that dedupe drop that copy.
A short Redis claim (``...:sending:<id>``) keeps two copies of one id (one redelivered to the fresh stage, one
in the retry stage) from being sent at the same moment. Redis down stops the stage, rather than risk duplicates:
the Redis error is transient, so `jobstream.stage_runner` rebuilds the stage with backoff until Redis answers,
resuming from the committed offsets. A request the stage cannot handle at all (a data error: see
`jobstream.failures`) goes to ``dead_letter`` with its reason, and the next one is delivered.
Outputs (outcome, dead letter, retry) go through Quix's producer, flushed before each checkpoint commits offsets;
at-least-once rather than exactly-once, since a transaction cannot take back an email that was sent.

Retries without stalling other partitions: Quix runs one message at a time per process, so one message may
hold the stage for at most the inline budget (``JOBSTREAM_NOTIFICATIONS_INLINE_BUDGET_MS``, 2 s): quick
attempts with exponential backoff and equal jitter while the budget lasts, each provider timeout cut to what is
left. A notification still failing is re-produced to ``notification.retry`` with headers ``jobstream-attempts``,
``jobstream-not-before-ms`` (now + the next backoff) and ``jobstream-error``, and the fresh stage moves on. The
retry stage consumes that topic in its own consumer group and sleeps until a message's not-before time, which
only delays other retries (at most by the backoff cap), never fresh notifications; the sleep also delays a
SIGTERM of the retry stage by up to the backoff cap. After
``JOBSTREAM_NOTIFICATIONS_MAX_ATTEMPTS`` attempts, or at once for a permanent error (SMTP 5xx, HTTP 4xx, an
unknown template), the request goes to ``notification.dead_letter`` (re-encoded with the newest schema) with
``jobstream-error`` and ``jobstream-attempts`` headers, and a ``failed`` outcome is emitted; every delivery
emits a ``sent`` outcome. Undecodable requests go to ``dead_letter`` (``topologies.dead_letter``) and the
stage carries on.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import redis
from quixstreams import Application
from quixstreams.models import Topic

from jobstream.backoff import Backoff
from jobstream.dead_letter import Decoded, EventDecoder, Headers, guarded, route_poison
from jobstream.process_metrics import process_registry
from jobstream.quix_app import build_application as build_stage_application
from jobstream.settings import Settings
from jobstream.stage_metrics import StageMetrics
from jobstream.stage_runner import run_stage
from schemas.avro import Record, load_event_schemas
from schemas.serde import AvroEventSerializer
from schemas.topics import (
    DEAD_LETTER,
    NOTIFICATION_DEAD_LETTER,
    NOTIFICATION_OUTCOME,
    NOTIFICATION_REQUESTED,
    NOTIFICATION_RETRY,
    USER_REGISTERED,
)
from topologies.notifications.delivery import (
    AlreadyDelivered,
    Delivered,
    DeliveredLedger,
    Deliverer,
    DeliveryPolicy,
    GiveUp,
    RetryLater,
    Verdict,
)
from topologies.notifications.headers import ATTEMPTS_HEADER, ERROR_HEADER, NOT_BEFORE_HEADER
from topologies.notifications.metrics import NotificationMetrics
from topologies.notifications.providers import Provider, SmtpProvider, WebhookProvider
from topologies.notifications.recipients import RecipientDirectory
from topologies.notifications.templates import Channel
from topologies.runtime import build_when_topics_are_visible, dead_letter_topic, input_topic, require_topics

Stage = Literal["fresh", "retry"]

_OWN_HEADERS = {ATTEMPTS_HEADER, NOT_BEFORE_HEADER, ERROR_HEADER}
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Handled:
    """A request with its verdict and the headers it came with (minus the retry lane's own)."""

    request: Record
    verdict: Verdict
    headers: list[tuple[str, str | bytes]]
    handled_at_s: float

    def retry_headers(self) -> list[tuple[str, str | bytes]]:
        verdict = self.verdict
        if not isinstance(verdict, RetryLater):
            raise TypeError(f"retry headers asked of a {type(verdict).__name__} verdict")
        not_before_ms = int((self.handled_at_s + verdict.delay_s) * 1000)
        return [
            (ATTEMPTS_HEADER, str(verdict.attempts).encode()),
            (NOT_BEFORE_HEADER, str(not_before_ms).encode()),
            (ERROR_HEADER, verdict.error[:_MAX_ERROR_CHARS].encode()),
            *self.headers,
        ]

    def dead_letter_headers(self) -> list[tuple[str, str | bytes]]:
        verdict = self.verdict
        if not isinstance(verdict, GiveUp):
            raise TypeError(f"dead-letter headers asked of a {type(verdict).__name__} verdict")
        return [
            (ERROR_HEADER, verdict.error[:_MAX_ERROR_CHARS].encode()),
            (ATTEMPTS_HEADER, str(verdict.attempts).encode()),
            *self.headers,
        ]

    def outcome(self) -> Record:
        verdict = self.verdict
        failed = isinstance(verdict, GiveUp)
        return {
            "notification_id": self.request["notification_id"],
            "recipient_id": self.request["recipient_id"],
            "channel": self.request["channel"],
            "status": "failed" if failed else "sent",
            "attempts": verdict.attempts if isinstance(verdict, GiveUp | Delivered) else 0,
            "error": verdict.error if isinstance(verdict, GiveUp) else None,
            "latency_ms": max(0, int((self.handled_at_s - _epoch_s(self.request["requested_at"])) * 1000)),
            "occurred_at": int(self.handled_at_s * 1000),
        }


class NotificationStage:
    """One stage's delivery step: (wait for the not-before time), deliver, count."""

    def __init__(self, stage: Stage, deliverer: Deliverer, metrics: NotificationMetrics, backoff_cap_s: float) -> None:
        self._stage = stage
        self._deliverer = deliverer
        self._metrics = metrics
        self._backoff_cap_s = backoff_cap_s

    def __call__(self, value: Decoded, key: Any, timestamp: int, headers: Headers | None) -> Handled:
        headers = list(headers or [])
        if self._stage == "retry":
            self._wait_until(_int_header(headers, NOT_BEFORE_HEADER))
        request = value.record
        verdict = self._deliverer.deliver(request, _int_header(headers, ATTEMPTS_HEADER))
        handled = Handled(request, verdict, [h for h in headers if h[0] not in _OWN_HEADERS], time.time())
        channel = request["channel"]
        if isinstance(verdict, RetryLater):
            self._metrics.requeued.labels(channel).inc()
        elif isinstance(verdict, GiveUp):
            self._metrics.dead_lettered.labels(channel).inc()
        elif isinstance(verdict, Delivered):
            self._metrics.delivered.labels(channel).inc()
            latency_s = handled.handled_at_s - _epoch_s(request["requested_at"])
            self._metrics.latency.labels(channel).observe(max(0.0, latency_s))
        return handled

    def _wait_until(self, not_before_ms: int) -> None:
        # Clamped so a bad header cannot park the retry lane for longer than one backoff step.
        delay_s = min(self._backoff_cap_s, not_before_ms / 1000 - time.time())
        if delay_s > 0:
            time.sleep(delay_s)


def _epoch_s(moment: Any) -> float:
    # fastavro reads timestamp-millis as an aware datetime; accept raw millis too.
    return moment.timestamp() if hasattr(moment, "timestamp") else float(moment) / 1000


def _int_header(headers: Headers, name: str) -> int:
    for header_name, data in headers:
        if header_name == name:
            try:
                return int(data)
            except (TypeError, ValueError):
                return 0
    return 0


def _avro_topic(app: Application, name: str, serializer: AvroEventSerializer) -> Topic:
    return app.topic(name, key_serializer="bytes", value_serializer=serializer)


def build_application(
    settings: Settings, stage: Stage, metrics: NotificationMetrics, topology_metrics: StageMetrics
) -> Application:
    """Assemble one stage: clients, providers, the Quix application and its dataframe."""
    config = settings.notifications
    require_topics(
        settings.kafka,
        [
            NOTIFICATION_REQUESTED,
            NOTIFICATION_RETRY,
            NOTIFICATION_OUTCOME,
            NOTIFICATION_DEAD_LETTER,
            DEAD_LETTER,
            USER_REGISTERED,
        ],
    )

    events = load_event_schemas()
    http = httpx.Client()
    providers: dict[Channel, Provider] = {
        "email": SmtpProvider(config.smtp_host, config.smtp_port, config.sender),
        "sms": WebhookProvider(config.sms_webhook_url, http),
        "push": WebhookProvider(config.push_webhook_url, http),
    }
    policy = DeliveryPolicy(
        max_attempts=config.max_attempts,
        backoff=Backoff(base_s=config.backoff_base_ms / 1000, cap_s=config.backoff_cap_ms / 1000),
        inline_budget_s=config.inline_budget_ms / 1000,
        provider_timeout_s=config.provider_timeout_ms / 1000,
    )
    ledger = DeliveredLedger(redis.Redis.from_url(settings.redis_url, socket_timeout=5), config.dedup_ttl_s)
    deliver = NotificationStage(
        stage, Deliverer(providers, ledger, policy, metrics, random.Random()), metrics, policy.backoff.cap_s
    )
    topology = config.topology
    group = topology.consumer_group if stage == "fresh" else f"{topology.consumer_group}.retry"
    consumer_config: dict[str, object] = {}
    if topology.instance_id is not None:
        consumer_config["group.instance.id"] = f"{group}-{topology.instance_id}"
    app = build_stage_application(
        settings.kafka,
        consumer_group=group,
        state_dir=topology.state_dir,
        metrics=topology_metrics,
        processing_guarantee="at-least-once",
        # A message may take the inline budget; commit often so a restart redoes little.
        commit_interval_s=topology.commit_interval_ms / 1000,
        session_timeout_ms=topology.session_timeout_ms,
        consumer_config=consumer_config,
        # Every catalog topic exists (checked above): what Quix may create is the fresh stage's changelog.
        auto_create_topics=stage == "fresh",
    )
    source = NOTIFICATION_REQUESTED if stage == "fresh" else NOTIFICATION_RETRY
    requested = events["notification_requested"]
    requests = AvroEventSerializer(requested)

    decoded = app.dataframe(input_topic(app, source)).apply(EventDecoder({source: requested}, None), metadata=True)
    if stage == "fresh":
        users = EventDecoder({USER_REGISTERED: events["user_registered"]}, key_field="user_id")
        decoded = decoded.concat(app.dataframe(input_topic(app, USER_REGISTERED)).apply(users, metadata=True))
    poison = dead_letter_topic(app, DEAD_LETTER)
    valid = route_poison(decoded, poison, group, topology_metrics.poison)
    if stage == "fresh":
        directory = RecipientDirectory(metrics.unknown_recipients.inc)
        enriched = valid.apply(guarded(directory), stateful=True, metadata=True).filter(lambda value: value is not None)
        valid = route_poison(enriched, poison, group, topology_metrics.poison)
    handled = route_poison(valid.apply(guarded(deliver), metadata=True), poison, group, topology_metrics.poison)
    (
        handled.filter(lambda h: isinstance(h.verdict, RetryLater))
        .set_headers(lambda h, key, timestamp, headers: h.retry_headers())
        .apply(lambda h: h.request)
        .to_topic(_avro_topic(app, NOTIFICATION_RETRY, requests))
    )
    (
        handled.filter(lambda h: isinstance(h.verdict, GiveUp))
        .set_headers(lambda h, key, timestamp, headers: h.dead_letter_headers())
        .apply(lambda h: h.request)
        .to_topic(_avro_topic(app, NOTIFICATION_DEAD_LETTER, requests))
    )
    (
        handled.filter(lambda h: not isinstance(h.verdict, RetryLater | AlreadyDelivered))
        .set_headers(lambda h, key, timestamp, headers: [])
        .apply(lambda h: h.outcome())
        .to_topic(_avro_topic(app, NOTIFICATION_OUTCOME, AvroEventSerializer(events["notification_outcome"])))
    )
    return app


def run_notifications(settings: Settings, stage: Stage) -> None:
    """Run one stage until SIGTERM or Ctrl-C; the retry stage serves metrics on the configured port + 1."""
    registry = process_registry()
    metrics = NotificationMetrics(registry)
    topology_metrics = StageMetrics(registry, "notifications" if stage == "fresh" else "notifications.retry")
    notifications = settings.notifications
    topology_metrics.serve(
        notifications.topology.metrics_port if stage == "fresh" else notifications.retry_metrics_port
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run_stage(
        f"notifications.{stage}",
        lambda: build_when_topics_are_visible(lambda: build_application(settings, stage, metrics, topology_metrics)),
        on_recovery=topology_metrics.recovered,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m topologies.notifications", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["fresh", "retry"], required=True, help="each stage is its own process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_notifications(Settings.from_env(identity="notifications"), args.stage)
