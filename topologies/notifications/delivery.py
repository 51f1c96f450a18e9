"""One notification's delivery: skip what was delivered, render, attempt within a time budget, decide what next.

``Deliverer.deliver`` never holds its caller longer than the policy's inline budget (plus at most one
provider timeout's rounding): attempts and the backoff sleeps between them run only while the budget lasts,
and each attempt's provider timeout is cut to what is left. It returns a verdict; the topology acts on it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from jobstream.backoff import Backoff
from state import redis_keys
from topologies.notifications.metrics import NotificationMetrics
from topologies.notifications.providers import DeliveryError, Provider
from topologies.notifications.templates import Channel, Rendered, TemplateError, render


@dataclass(frozen=True)
class DeliveryPolicy:
    """Attempts in all, `backoff` between them, and how long one message may hold its consumer."""

    max_attempts: int
    backoff: Backoff
    inline_budget_s: float
    provider_timeout_s: float


@dataclass(frozen=True)
class Delivered:
    attempts: int


@dataclass(frozen=True)
class AlreadyDelivered:
    pass


@dataclass(frozen=True)
class RetryLater:
    attempts: int
    delay_s: float
    error: str


@dataclass(frozen=True)
class GiveUp:
    attempts: int
    error: str


Verdict = Delivered | AlreadyDelivered | RetryLater | GiveUp


class DeliveredLedger:
    """Notification ids already delivered, in Redis with a TTL longer than any redelivery can arrive.

    A claim keeps two copies of one notification (a redelivery in the fresh stage, the original in the retry
    stage) from being sent at the same moment; it expires by itself if its holder dies.
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._client = client
        self._ttl_s = ttl_s

    def contains(self, notification_id: str) -> bool:
        return bool(self._client.exists(redis_keys.notification_delivered(notification_id)))

    def claim(self, notification_id: str, hold_s: float) -> bool:
        key = redis_keys.notification_sending(notification_id)
        return bool(self._client.set(key, 1, nx=True, px=max(1, int(hold_s * 1000))))

    def release(self, notification_id: str) -> None:
        self._client.delete(redis_keys.notification_sending(notification_id))

    def record(self, notification_id: str) -> None:
        self._client.set(redis_keys.notification_delivered(notification_id), int(time.time() * 1000), ex=self._ttl_s)


class Deliverer:
    """Delivers one decoded NotificationRequested through the provider of its channel."""

    def __init__(
        self,
        providers: Mapping[Channel, Provider],
        ledger: DeliveredLedger,
        policy: DeliveryPolicy,
        metrics: NotificationMetrics,
        rng: random.Random,
    ) -> None:
        self._providers = providers
        self._ledger = ledger
        self._policy = policy
        self._metrics = metrics
        self._rng = rng

    def deliver(self, request: Mapping[str, Any], attempts_before: int) -> Verdict:
        """Attempt delivery; `attempts_before` counts the attempts earlier passes already made."""
        notification_id: str = request["notification_id"]
        channel: Channel = request["channel"]
        try:
            message = render(request["template"], channel, request["params"])
        except TemplateError as error:
            return GiveUp(attempts_before, f"TemplateError: {error}")
        policy = self._policy
        # Held past the budget by one provider timeout: the longest this call can take.
        if not self._ledger.claim(notification_id, policy.inline_budget_s + policy.provider_timeout_s):
            return RetryLater(attempts_before, policy.backoff.delay_s(1, self._rng), "another copy is being sent")
        try:
            # Checked under the claim, so a copy that finished a moment ago is seen here.
            if self._ledger.contains(notification_id):
                self._metrics.duplicates.labels(channel).inc()
                return AlreadyDelivered()
            return self._attempt(request, message, attempts_before)
        finally:
            self._ledger.release(notification_id)

    def _attempt(self, request: Mapping[str, Any], message: Rendered, attempts_before: int) -> Verdict:
        notification_id: str = request["notification_id"]
        channel: Channel = request["channel"]
        provider = self._providers[channel]
        policy = self._policy
        deadline = time.monotonic() + policy.inline_budget_s
        # An attempt squeezed into less than this would only time out: re-queue instead.
        least_attempt_s = min(policy.provider_timeout_s, policy.inline_budget_s / 4)
        attempts = attempts_before
        while True:
            attempts += 1
            if attempts > 1:
                self._metrics.retries.labels(channel).inc()
            timeout_s = max(least_attempt_s, min(policy.provider_timeout_s, deadline - time.monotonic()))
            try:
                provider.send(notification_id, request["address"], message, timeout_s)
            except DeliveryError as error:
                self._metrics.failed_attempts.labels(channel).inc()
                reason = f"DeliveryError: {error}"
                if error.permanent or attempts >= policy.max_attempts:
                    return GiveUp(attempts, reason)
                wait_s = policy.backoff.delay_s(attempts, self._rng)
                if time.monotonic() + wait_s + least_attempt_s > deadline:
                    return RetryLater(attempts, wait_s, reason)
                time.sleep(wait_s)
                continue
            # The crash window of at-least-once: a crash between send and record re-sends on redelivery.
            self._ledger.record(notification_id)
            return Delivered(attempts)
