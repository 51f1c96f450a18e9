"""Every Redis key Jobstream uses, declared once: the read models the sinks write, and the gateway's and the
notification topology's own working state. All of them start with ``jobstream:``.

Read models (written only by the Redis sink):

| key | type | holds |
| --- | --- | --- |
| ``jobstream:job:{job_id}`` | hash | the job's fields as strings, ``tags`` as JSON, ``version`` (lifecycle offset) |
| ``jobstream:job:{job_id}:counters`` | hash | ``applications``, ``accepted``, ``rejected``, ``rejected:{reason}`` |
| ``jobstream:jobs:trending:{yyyymmddhh}`` | sorted set | job_id scored by applications accepted in that UTC hour |
| ``jobstream:candidate:{candidate_id}:applications`` | sorted set | application_id scored by submitted_at (ms) |
| ``jobstream:application:{application_id}`` | hash | job_id, status, reason, stage, ``version``, ``stage_version`` |
| ``jobstream:sink:{group}:offset:{topic}:{partition}`` | string | the last offset a Redis sink applied |

Counters and trending scores count each application once: its hash's ``counted`` field marks it counted. The
Redis sink publishes the id of every application it changes on the channel ``jobstream:applications:changed``.

Working state:

| key | type | holds |
| --- | --- | --- |
| ``jobstream:auth:revoked:jti:{token_id}``, ``...:sid:{session_id}`` | string | a revoked access token or session |
| ``jobstream:ratelimit:{limit}`` | string | a GCRA limit's theoretical arrival time |
| ``jobstream:gateway:idempotency:{scope}`` | string | an Idempotency-Key's fingerprint and application id |
| ``jobstream:gateway:pending:{application_id}`` | string | the candidate id of an application accepted with 202 |
| ``jobstream:gateway:job:{job_id}``, ``...:job-lock:{job_id}`` | string | the gateway's copy of a job, its edit lock |
| ``jobstream:cache:{name}:{key}``, ``jobstream:cache-lock:{name}:{key}`` | string | a cached read, its refresh lock |
| ``jobstream:notifications:delivered:{id}``, ``...:sending:{id}`` | string | delivered, or being sent |
"""

from __future__ import annotations

from datetime import datetime

PREFIX = "jobstream:"
# Pub/sub: the id of each application whose Redis read model just changed (a decision or a stage).
APPLICATIONS_CHANGED = f"{PREFIX}applications:changed"
# Trending buckets outlive the day a reader unions over, then expire on their own.
TRENDING_BUCKET_TTL_S = 3 * 24 * 3600


def job_detail(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def job_counters(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:counters"


def trending_jobs(hour: datetime) -> str:
    """The bucket of one UTC hour; readers ZUNIONSTORE the last few buckets."""
    return f"{PREFIX}jobs:trending:{hour:%Y%m%d%H}"


def candidate_applications(candidate_id: str) -> str:
    return f"{PREFIX}candidate:{candidate_id}:applications"


def application(application_id: str) -> str:
    return f"{PREFIX}application:{application_id}"


def sink_offset(group: str, topic: str, partition: int) -> str:
    return f"{PREFIX}sink:{group}:offset:{topic}:{partition}"


def revoked_token(token_id: str) -> str:
    return f"{PREFIX}auth:revoked:jti:{token_id}"


def revoked_session(session_id: str) -> str:
    return f"{PREFIX}auth:revoked:sid:{session_id}"


def rate_limit(limit: str) -> str:
    return f"{PREFIX}ratelimit:{limit}"


def idempotency(scope: str) -> str:
    return f"{PREFIX}gateway:idempotency:{scope}"


def pending_application(application_id: str) -> str:
    """Whose application this is, from its 202 until its decision is visible (the gateway's own record)."""
    return f"{PREFIX}gateway:pending:{application_id}"


def gateway_job(job_id: str) -> str:
    return f"{PREFIX}gateway:job:{job_id}"


def gateway_job_lock(job_id: str) -> str:
    return f"{PREFIX}gateway:job-lock:{job_id}"


def cached(name: str, key: str) -> str:
    return f"{PREFIX}cache:{name}:{key}"


def cache_lock(name: str, key: str) -> str:
    return f"{PREFIX}cache-lock:{name}:{key}"


def notification_delivered(notification_id: str) -> str:
    return f"{PREFIX}notifications:delivered:{notification_id}"


def notification_sending(notification_id: str) -> str:
    return f"{PREFIX}notifications:sending:{notification_id}"
