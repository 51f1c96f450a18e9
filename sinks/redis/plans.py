"""What each event does to the Redis read models, as operations the Redis sink applies in one script.

Keys come from `state.redis_keys`. Detail hashes carry their own version field and are overwritten only
by a newer event; counters and trending scores are increments, which the sink applies exactly once per
offset and sums per batch before writing (write-behind). A decision's increments count an application, not an
event: they run only the first time its application is seen (a `once` marker on its hash), so a decision read
again, at any offset or by a new sink group, counts nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from quixstreams.sinks.base.item import SinkItem

from jobstream.clock import epoch_ms
from schemas.topics import APPLICATION_DECIDED, APPLICATION_STAGE_CHANGED, JOB_LIFECYCLE
from state import redis_keys

# ["hset_newer", key, version_field, version, [field, value, ...]] | ["zadd", key, score, member]
# | ["hincrby", key, field, amount] | ["zincrby", key, amount, member, ttl_s]
# | ["once", key, marker_field, [op, ...]] (the ops only if the marker field was not set yet)
# | ["publish", channel, message]; every value a string.
Op = list[object]
Plan = Callable[[SinkItem], list[Op]]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return str(epoch_ms(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def job_plan(item: SinkItem) -> list[Op]:
    job = item.value
    fields = [
        *("job_id", job["job_id"], "company_id", job["company_id"], "title", job["title"]),
        *("description", job["description"], "location", job["location"], "remote", job["remote"]),
        *("salary_min", job["salary_min"], "salary_max", job["salary_max"], "currency", job["currency"]),
        *("status", "closed" if job["kind"] == "closed" else "open", "max_applications", job["max_applications"]),
        *("deadline", job["deadline"], "updated_at", job["occurred_at"], "tags", json.dumps(sorted(job["tags"]))),
    ]
    return [["hset_newer", redis_keys.job_detail(job["job_id"]), "version", str(item.offset), _texts(fields)]]


def decision_plan(item: SinkItem) -> list[Op]:
    decision = item.value
    job_id, outcome = decision["job_id"], decision["outcome"]
    counters = redis_keys.job_counters(job_id)
    fields = [
        *("job_id", job_id, "candidate_id", decision["candidate_id"], "status", outcome),
        *("reason", decision["reason"], "submitted_at", decision["submitted_at"]),
        *("decided_at", decision["decided_at"]),
    ]
    application = redis_keys.application(decision["application_id"])
    counted: list[Op] = [["hincrby", counters, "applications", "1"], ["hincrby", counters, outcome, "1"]]
    if outcome == "rejected":
        counted.append(["hincrby", counters, f"rejected:{decision['reason']}", "1"])
    else:
        hour = decision["submitted_at"].astimezone(UTC)
        bucket = redis_keys.trending_jobs(hour)
        counted.append(["zincrby", bucket, "1", job_id, str(redis_keys.TRENDING_BUCKET_TTL_S)])
    return [
        ["hset_newer", application, "version", str(item.offset), _texts(fields)],
        [
            "zadd",
            redis_keys.candidate_applications(decision["candidate_id"]),
            str(epoch_ms(decision["submitted_at"])),
            decision["application_id"],
        ],
        ["once", application, "counted", counted],
        ["publish", redis_keys.APPLICATIONS_CHANGED, decision["application_id"]],
    ]


def stage_plan(item: SinkItem) -> list[Op]:
    change = item.value
    fields = ["stage", change["stage"], "stage_changed_at", _text(change["changed_at"])]
    key = redis_keys.application(change["application_id"])
    return [
        ["hset_newer", key, "stage_version", str(item.offset), fields],
        ["publish", redis_keys.APPLICATIONS_CHANGED, change["application_id"]],
    ]


def plans() -> dict[str, Plan]:
    """The plan of each topic the Redis sink reads."""
    return {
        JOB_LIFECYCLE: job_plan,
        APPLICATION_DECIDED: decision_plan,
        APPLICATION_STAGE_CHANGED: stage_plan,
    }


def _texts(values: list[object]) -> list[str]:
    return [_text(value) for value in values]
