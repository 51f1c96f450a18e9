"""The topics the notification topology reads and writes, and the headers it puts on them."""

from __future__ import annotations

ATTEMPTS_HEADER = "jobstream-attempts"
NOT_BEFORE_HEADER = "jobstream-not-before-ms"
ERROR_HEADER = "jobstream-error"
