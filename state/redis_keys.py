"""The Redis key layout of the read models, declared once: every key a sink writes or a reader reads.

| key | type | holds |
| --- | --- | --- |
| ``jobstream:job:{job_id}`` | hash | the job's fields as strings, ``tags`` as JSON, ``version`` (lifecycle offset) |
| ``jobstream:job:{job_id}:counters`` | hash | ``applications``, ``accepted``, ``rejected``, ``rejected:{reason}`` |
| ``jobstream:jobs:trending:{yyyymmddhh}`` | sorted set | job_id scored by applications accepted in that UTC hour |
| ``jobstream:candidate:{candidate_id}:applications`` | sorted set | application_id scored by submitted_at (ms) |
| ``jobstream:application:{application_id}`` | hash | job_id, status, reason, stage, ``version``, ``stage_version`` |
| ``jobstream:sink:{group}:offset:{topic}:{partition}`` | string | the last offset a Redis sink applied |
"""

from __future__ import annotations

from datetime import datetime

PREFIX = "jobstream:"
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
