"""Analytics facts: each decision or view as one small dict in event time, and the window sums over them.

A fact is ``{"job_id", "company_id", "kind", "reason", "at"}`` with kind ``accepted``, ``rejected`` or ``view`` and
``at`` its event time in epoch ms: a decision counts at the application's ``submitted_at`` (so a window's
applications and their outcomes line up), a view at its ``viewed_at``. Applications are counted from
application.decided, not application.created: decisions are exactly once, so duplicates never inflate a window.

Views carry no company; the job's company is kept in state from job.lifecycle (and from decisions, which carry
it), keyed by job_id. A view of a job whose lifecycle was never seen has no company and stays out of company
windows (counted by a metric).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from quixstreams import State

from jobstream.clock import epoch_ms
from jobstream.dead_letter import Decoded
from schemas.avro import Record
from schemas.topics import APPLICATION_DECIDED, JOB_LIFECYCLE

Fact = dict[str, Any]
Totals = dict[str, Any]

# Brokers refuse records timestamped further ahead than this (log.message.timestamp.after.max.ms, 1h by default),
# and the repartition by company writes each fact with its event time.
MAX_FUTURE_MS = 60 * 60 * 1000


def event_time(topic: str, record: Record) -> datetime:
    """When a decision (its application's submission) or a view happened."""
    moment: datetime = record["submitted_at"] if topic == APPLICATION_DECIDED else record["viewed_at"]
    return moment


def check_fact_input(topic: str, record: Record) -> str | None:
    """An `EventDecoder` check of what the windows could not hold: an event time before 1970 or over an hour ahead
    would fail the whole transaction, and a rejection without its reason has no place among the reasons counted."""
    if topic == JOB_LIFECYCLE:
        return None
    if topic == APPLICATION_DECIDED and record["outcome"] == "rejected" and not record["reason"]:
        return "a rejected decision without its reason"
    moment = event_time(topic, record)
    at = epoch_ms(moment)
    if not 0 <= at <= time.time() * 1000 + MAX_FUTURE_MS:
        return f"event time {moment.isoformat()} is before 1970 or more than an hour ahead"
    return None


class FactMaker:
    """The stateful step: remembers each job's company and turns decisions and views into facts."""

    def __init__(self, on_unattributed: Callable[[], None]) -> None:
        self._on_unattributed = on_unattributed

    def __call__(self, value: Decoded, state: State[str, Any]) -> list[Fact]:
        record = value.record
        # An empty company id is no company: its windows could not be keyed nor written.
        if value.topic == JOB_LIFECYCLE:
            state.set("company", record["company_id"] or None)
            return []
        if value.topic == APPLICATION_DECIDED:
            company = record["company_id"] or state.get("company")
            if record["company_id"]:
                state.set("company", record["company_id"])
            kind, reason = record["outcome"], record["reason"]
        else:
            company, kind, reason = state.get("company"), "view", None
        if company is None:
            self._on_unattributed()
        at = epoch_ms(event_time(value.topic, record))
        return [{"job_id": record["job_id"], "company_id": company, "kind": kind, "reason": reason, "at": at}]


def first_totals(fact: Fact) -> Totals:
    """Quix `reduce` initializer: the totals of a window holding only `fact`."""
    return add_fact({"accepted": 0, "rejected_by_reason": {}, "views": 0}, fact)


def add_fact(totals: Totals, fact: Fact) -> Totals:
    """Quix `reduce` reducer."""
    totals["job_id"] = fact["job_id"]
    totals["company_id"] = fact["company_id"] or totals.get("company_id")
    if fact["kind"] == "view":
        totals["views"] += 1
    elif fact["kind"] == "accepted":
        totals["accepted"] += 1
    else:
        reasons = totals["rejected_by_reason"]
        reasons[fact["reason"]] = reasons.get(fact["reason"], 0) + 1
    return totals


def window_stats(window: dict[str, Any]) -> dict[str, Any]:
    """A closed Quix window (start, end, value=totals) as the fields both stats events share."""
    totals = window["value"]
    rejected = sum(totals["rejected_by_reason"].values())
    applications = totals["accepted"] + rejected
    views = totals["views"]
    return {
        "window_start": window["start"],
        "window_end": window["end"],
        "applications": applications,
        "accepted": totals["accepted"],
        "rejected": rejected,
        "rejected_by_reason": dict(totals["rejected_by_reason"]),
        "views": views,
        "conversion": applications / views if views else None,
    }


def job_window_stats(window: dict[str, Any]) -> dict[str, Any]:
    totals = window["value"]
    return {"job_id": totals["job_id"], "company_id": totals.get("company_id"), **window_stats(window)}


def company_window_stats(window: dict[str, Any]) -> dict[str, Any]:
    return {"company_id": window["value"]["company_id"], **window_stats(window)}
