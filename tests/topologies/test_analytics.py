"""The analytics topology: window counts equal the ground truth of a generated event set, late events included."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.topology_harness import EVENTS, TopicReader, application_record, ids, job_record

MINUTE = 60_000
HOUR = 60 * MINUTE
JOB_GRACE = 10_000
COMPANY_GRACE = 60_000
REASONS = ("job_closed", "past_deadline", "job_full")


@dataclass(frozen=True)
class Fact:
    job_id: str
    kind: str  # view, accepted, rejected
    at: int
    reason: str | None = None


def tumbling(at: int) -> list[tuple[int, int]]:
    start = at - at % MINUTE
    return [(start, start + MINUTE)]


def hopping(at: int) -> list[tuple[int, int]]:
    step = 5 * MINUTE
    first = at - at % step
    return [(start, start + HOUR) for start in range(first, at - HOUR, -step)]


@dataclass
class Truth:
    windows: dict[tuple[str, int], dict]
    dropped: int
    late_counted: int


def ground_truth(
    facts: list[Fact], key: Callable[[Fact], str], windows: Callable[[int], list[tuple[int, int]]], grace: int
) -> Truth:
    """The specification, in processing order: a window closes once an event of its key is `grace` past its end."""
    latest: dict[str, int] = {}
    counted: dict[tuple[str, int, int], list[Fact]] = defaultdict(list)
    dropped = late_counted = 0
    for fact in facts:
        k = key(fact)
        late = fact.at < latest.get(k, fact.at)
        latest[k] = max(latest.get(k, fact.at), fact.at)
        for start, end in windows(fact.at):
            if end <= latest[k] - grace:
                dropped += 1
            else:
                counted[(k, start, end)].append(fact)
                late_counted += late
    closed = {}
    for (k, start, end), members in counted.items():
        if end <= latest[k] - grace:
            closed[(k, start)] = _stats(members, end)
    return Truth(closed, dropped, late_counted)


def _stats(facts: list[Fact], end: int) -> dict:
    reasons: dict[str, int] = defaultdict(int)
    for fact in facts:
        if fact.kind == "rejected":
            reasons[fact.reason] += 1
    accepted = sum(f.kind == "accepted" for f in facts)
    views = sum(f.kind == "view" for f in facts)
    applications = accepted + sum(reasons.values())
    return {
        "window_end": end,
        "applications": applications,
        "accepted": accepted,
        "rejected": sum(reasons.values()),
        "rejected_by_reason": dict(reasons),
        "views": views,
        "conversion": applications / views if views else None,
    }


def generate(jobs: list[str], base: int, rng: random.Random) -> list[Fact]:
    """Mostly ordered traffic with jitter, a late event within grace, one beyond it, and closers far ahead."""
    times = sorted(base + rng.randrange(4 * MINUTE) for _ in range(80))
    facts = []
    for at in times:
        jittered = at - rng.randrange(40_000) if rng.random() < 0.3 else at
        kind = rng.choice(["view", "view", "accepted", "rejected"])
        reason = rng.choice(REASONS) if kind == "rejected" else None
        facts.append(Fact(rng.choice(jobs), kind, max(base, jittered), reason))
    latest = max(f.at for f in facts if f.job_id == jobs[0])
    facts.append(Fact(jobs[0], "view", latest - 5_000))  # late, within grace: counted
    facts.append(Fact(jobs[0], "accepted", latest - 2 * MINUTE))  # beyond grace: dropped from its minute
    facts.append(Fact(jobs[0], "accepted", base + 3 * HOUR))  # closes every early window
    facts.append(Fact(jobs[1], "view", base + 2 * HOUR + MINUTE))  # misses 11 of its 12 company windows
    facts.extend(Fact(job, "view", base + 6 * HOUR) for job in jobs)  # closes the rest
    return facts


@pytest.fixture
def readers(settings):
    job = TopicReader(settings.kafka, "analytics.job_minute", EVENTS["job_window_stats"])
    company = TopicReader(settings.kafka, "analytics.company_hour", EVENTS["company_window_stats"])
    yield job, company
    job.close()
    company.close()


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def test_window_counts_equal_the_ground_truth_including_late_events(
    topology_launcher, event_producer, readers, settings
):
    process = topology_launcher.create(
        "analytics",
        ["application.decided", "job.viewed", "job.lifecycle"],
        JOBSTREAM_ANALYTICS_JOB_WINDOW_GRACE_MS=str(JOB_GRACE),
        JOBSTREAM_ANALYTICS_COMPANY_WINDOW_GRACE_MS=str(COMPANY_GRACE),
    )
    rng = random.Random(20261129)
    jobs, company = [ids("job"), ids("job")], ids("company")
    # Event times hours in the past: brokers refuse timestamps too far in the future, and the closers run 6h ahead.
    now = int(time.time() * 1000)
    base = now - now % HOUR - 8 * HOUR
    facts = generate(jobs, base, rng)
    job_truth = ground_truth(facts, lambda f: f.job_id, tumbling, JOB_GRACE)
    company_truth = ground_truth(facts, lambda f: company, hopping, COMPANY_GRACE)
    assert job_truth.dropped >= 2 and job_truth.late_counted >= 2  # the data exercises both sides of the grace
    assert company_truth.dropped >= 11

    # Both jobs on one partition, with increasing timestamps, so the processing order is the order produced here.
    partition = rng.randrange(6)
    clock = iter(range(now, now + 10_000))
    for job_id in jobs:
        record = job_record(job_id, company_id=company)
        event_producer.send("job.lifecycle", "job_lifecycle", record, timestamp_ms=next(clock), partition=partition)
    for fact in facts:
        at = datetime.fromtimestamp(fact.at / 1000, UTC)
        if fact.kind == "view":
            topic, event = "job.viewed", "job_viewed"
            record = {"event_id": ids("evt"), "job_id": fact.job_id, "viewer_id": None, "viewed_at": at}
        else:
            topic, event = "application.decided", "application_decided"
            application = application_record(fact.job_id, submitted_at=at)
            record = {
                **{k: application[k] for k in ("application_id", "job_id", "candidate_id", "submitted_at")},
                "event_id": ids("evt"),
                "company_id": company,
                "outcome": fact.kind,
                "reason": fact.reason,
                "decided_at": at,
            }
        event_producer.send(topic, event, record, timestamp_ms=next(clock), partition=partition)
    event_producer.flush()
    process.start()

    group = process.group.encode()
    job_reader, company_reader = readers
    job_windows = job_reader.read(
        lambda o: o.headers.get("jobstream-topology") == group and o.record["job_id"] in jobs,
        lambda kept: len(kept) >= len(job_truth.windows),
        timeout_s=90,
    )
    company_windows = company_reader.read(
        lambda o: o.headers.get("jobstream-topology") == group and o.record["company_id"] == company,
        lambda kept: len(kept) >= len(company_truth.windows),
        timeout_s=60,
    )
    time.sleep(1)  # anything emitted twice would follow right behind
    job_reader.read(lambda o: o.record["job_id"] in jobs, lambda kept: False, timeout_s=1)
    company_reader.read(lambda o: o.record["company_id"] == company, lambda kept: False, timeout_s=1)

    def actual(outputs, key_field):
        found = {}
        for output in outputs:
            record = output.record
            window = (record[key_field], _epoch_ms(record["window_start"]))
            assert window not in found, f"window {window} emitted twice"
            stats = {name: record[name] for name in _stats([], 0) if name != "window_end"}
            found[window] = {**stats, "window_end": _epoch_ms(record["window_end"])}
        return found

    assert actual(job_windows, "job_id") == job_truth.windows
    assert actual(company_windows, "company_id") == company_truth.windows
    assert all(o.record["company_id"] == company for o in job_windows)
    assert process.metric("jobstream_analytics_late_events_dropped_total", window="job_minute") >= job_truth.dropped
    assert (
        process.metric("jobstream_analytics_late_events_dropped_total", window="company_hour") >= company_truth.dropped
    )
    process.stop()


@pytest.mark.unit
def test_an_empty_company_id_is_no_company_and_keeps_its_facts_out_of_company_windows():
    from jobstream.dead_letter import Decoded
    from tests.topologies.test_acceptance import DictState
    from topologies.analytics.facts import FactMaker

    unattributed: list[int] = []
    facts = FactMaker(lambda: unattributed.append(1))
    state = DictState()
    job_id = ids("job")
    assert facts(Decoded("job.lifecycle", job_record(job_id, company_id="")), state) == []
    viewed = {"event_id": ids("evt"), "job_id": job_id, "viewer_id": None, "viewed_at": datetime.now(UTC)}
    [fact] = facts(Decoded("job.viewed", viewed), state)
    assert fact["company_id"] is None
    assert unattributed == [1]
