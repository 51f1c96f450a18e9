"""The topics the notification topology reads and writes, and the headers it puts on them."""

from __future__ import annotations

REQUESTED_TOPIC = "notification.requested"
RETRY_TOPIC = "notification.retry"
OUTCOME_TOPIC = "notification.outcome"
DEAD_LETTER_TOPIC = "notification.dead_letter"

ATTEMPTS_HEADER = "jobstream-attempts"
NOT_BEFORE_HEADER = "jobstream-not-before-ms"
ERROR_HEADER = "jobstream-error"
