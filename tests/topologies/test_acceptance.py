"""The acceptance topology: one decision per application, with the right reason, even across a kill -9."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobstream.errors import SettingsError
from jobstream.settings import Settings
from tests.topology_harness import EVENTS, TopicReader, application_record, ids, job_record
from topologies.acceptance.messages import decision_messages
from topologies.acceptance.rules import Decision, Duplicate, DuplicateKind, JobBook, Rejection

INPUTS = ["job.lifecycle", "application.created", "application.stage_changed"]


class DictState:
    """Quix `State` as the rules use it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    def exists(self, key: str) -> bool:
        return key in self.data


@pytest.mark.unit
def test_rules_recognise_each_kind_of_duplicate():
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-1"))
    first = application_record("job-1", idempotency_key="key-1")
    assert isinstance(book.decide(first), Decision)
    again = {**first}
    same_application = {**first, "event_id": "other-event"}
    same_key = {**application_record("job-1"), "candidate_id": first["candidate_id"], "idempotency_key": "key-1"}
    same_candidate = {**application_record("job-1"), "candidate_id": first["candidate_id"]}
    verdicts = [book.decide(a) for a in (again, same_application, same_key, same_candidate)]
    assert [v.kind for v in verdicts if isinstance(v, Duplicate)] == [
        DuplicateKind.EVENT_ID,
        DuplicateKind.APPLICATION_ID,
        DuplicateKind.IDEMPOTENCY_KEY,
        DuplicateKind.CANDIDATE,
    ]


@pytest.mark.unit
def test_two_candidates_who_pick_the_same_idempotency_key_get_a_decision_each():
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-3"))
    first = application_record("job-3", idempotency_key="retry-key-1")
    second = application_record("job-3", idempotency_key="retry-key-1")
    assert first["candidate_id"] != second["candidate_id"]
    verdicts = [book.decide(first), book.decide(second)]
    assert [type(v) for v in verdicts] == [Decision, Decision]
    assert [v.application["application_id"] for v in verdicts] == [first["application_id"], second["application_id"]]


@pytest.mark.unit
def test_rules_keep_a_closed_job_closed_and_let_an_early_candidate_apply_again():
    book = JobBook(DictState())
    early = application_record("job-2")
    assert book.decide(early).reason is Rejection.JOB_UNKNOWN
    book.apply_lifecycle(job_record("job-2"))
    retry = application_record("job-2", candidate_id=early["candidate_id"])
    assert book.decide(retry).reason is None
    book.apply_lifecycle(job_record("job-2", kind="closed"))
    book.apply_lifecycle(job_record("job-2", kind="updated"))
    assert book.decide(application_record("job-2")).reason is Rejection.JOB_CLOSED


@pytest.mark.unit
def test_messages_address_the_candidate_always_and_the_employer_only_when_accepted():
    book = JobBook(DictState())
    job = book.apply_lifecycle(job_record("job-3", max_applications=1))
    decision = book.decide(application_record("job-3"))
    accepted = decision_messages(decision)
    rejected = decision_messages(book.decide(application_record("job-3")))
    assert [m.record.get("template") for m in accepted] == [None, "application_received", "new_applicant"]
    assert accepted[2].record["recipient_id"] == job.employer_id
    assert [m.record.get("template") for m in rejected] == [None, "application_rejected"]
    assert rejected[0].record["reason"] == "job_full"
    # Deciding the same application again (a retried transaction) yields the same ids.
    ids_of = [[m.record.get("event_id") or m.record["notification_id"] for m in decision_messages(decision)]]
    assert ids_of == [[m.record.get("event_id") or m.record["notification_id"] for m in accepted]]


@pytest.mark.unit
def test_topology_settings_refuse_a_transaction_timeout_within_one_commit_interval():
    defaults = Settings.from_env({})
    assert (defaults.acceptance.consumer_group, defaults.acceptance.instance_id) == ("jobstream-acceptance", None)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {"JOBSTREAM_ACCEPTANCE_COMMIT_INTERVAL_MS": "5000", "JOBSTREAM_ACCEPTANCE_TRANSACTION_TIMEOUT_MS": "4000"}
        )
    assert raised.value.variable == "JOBSTREAM_ACCEPTANCE_TRANSACTION_TIMEOUT_MS"


@pytest.fixture
def notifications(settings):
    reader = TopicReader(settings.kafka, "notification.requested", EVENTS["notification_requested"])
    yield reader
    reader.close()


def _for_jobs(process, *job_ids):
    """Outputs of `process` (other topology processes may decide the same inputs) for these jobs."""
    wanted = set(job_ids)
    group = process.group.encode()
    return lambda output: output.headers.get("jobstream-topology") == group and output.record["job_id"] in wanted


def _send_job(producer, record):
    producer.send("job.lifecycle", "job_lifecycle", record)


def _send_application(producer, record):
    producer.send("application.created", "application_created", record)


def _settle(producer):
    """Flush, then let the clock move on, so later events get strictly later timestamps than earlier ones."""
    producer.flush()
    time.sleep(0.01)


def test_duplicates_get_exactly_one_decision(acceptance_topology, event_producer, decided):
    job_id = ids("job")
    _send_job(event_producer, job_record(job_id))
    _settle(event_producer)
    first = application_record(job_id, idempotency_key=ids("idem"))
    keyed = application_record(job_id, idempotency_key=ids("idem"))
    for record in (
        first,
        first,  # the same event redelivered
        {**first, "event_id": ids("evt")},  # the same application_id in a new event
        application_record(job_id, candidate_id=first["candidate_id"]),  # same candidate, same job
        keyed,
        # the same candidate's retry with its Idempotency-Key (the gateway would reuse the id; here a new one)
        application_record(job_id, candidate_id=keyed["candidate_id"], idempotency_key=keyed["idempotency_key"]),
    ):
        _send_application(event_producer, record)
    last = application_record(job_id)
    _send_application(event_producer, last)
    event_producer.flush()

    outputs = decided.read(_for_jobs(acceptance_topology, job_id), lambda kept: len(kept) >= 3, timeout_s=60)
    time.sleep(1.5)  # a second decision would be committed with or right after the third one
    outputs = decided.read(_for_jobs(acceptance_topology, job_id), lambda kept: False, timeout_s=1)
    counts = Counter(o.record["application_id"] for o in outputs)
    assert counts == {first["application_id"]: 1, keyed["application_id"]: 1, last["application_id"]: 1}
    assert all(o.record["outcome"] == "accepted" for o in outputs)
    for kind in ("event_id", "application_id", "candidate", "idempotency_key"):
        assert acceptance_topology.metric("jobstream_acceptance_duplicates_total", kind=kind) >= 1, kind


def test_closed_full_past_deadline_and_unknown_jobs_are_rejected_with_their_reason(
    acceptance_topology, event_producer, decided, notifications
):
    closed, full, late, unknown = (ids("job") for _ in range(4))
    now = datetime.now(UTC)
    _send_job(event_producer, job_record(closed))
    _send_job(event_producer, job_record(full, max_applications=1))
    late_job = job_record(late, deadline=now - timedelta(minutes=1))
    _send_job(event_producer, late_job)
    _settle(event_producer)
    _send_job(event_producer, job_record(closed, kind="closed"))
    _settle(event_producer)
    expected = {}
    for job_id, reason in ((closed, "job_closed"), (full, None), (full, "job_full"), (late, "past_deadline")):
        record = application_record(job_id)
        expected[record["application_id"]] = reason
        _send_application(event_producer, record)
    on_time = application_record(late, submitted_at=now - timedelta(minutes=2))
    expected[on_time["application_id"]] = None
    _send_application(event_producer, on_time)
    stranger = application_record(unknown)
    expected[stranger["application_id"]] = "job_unknown"
    _send_application(event_producer, stranger)
    event_producer.flush()

    jobs = _for_jobs(acceptance_topology, closed, full, late, unknown)
    outputs = decided.read(jobs, lambda kept: len(kept) >= len(expected), timeout_s=60)
    assert {o.record["application_id"]: o.record["reason"] for o in outputs} == expected
    assert {o.record["application_id"]: o.record["outcome"] for o in outputs} == {
        app: "accepted" if reason is None else "rejected" for app, reason in expected.items()
    }
    by_app = {o.record["application_id"]: o.record for o in outputs}
    assert by_app[stranger["application_id"]]["company_id"] is None
    assert by_app[on_time["application_id"]]["company_id"] == late_job["company_id"]

    # Every candidate hears about their decision; the two accepted ones also notify their employer.
    pushes = notifications.read(
        lambda o: (
            o.headers.get("jobstream-topology") == acceptance_topology.group.encode()
            and o.record["params"].get("application_id") in expected
        ),
        lambda kept: len(kept) >= len(expected) + 2,
        timeout_s=30,
    )
    templates = Counter(p.record["template"] for p in pushes)
    assert templates == {"application_rejected": 4, "application_received": 2, "new_applicant": 2}
    assert all(p.key == p.record["recipient_id"].encode() for p in pushes)
    # Candidates by email (their own address, resolved by the notifications stage), employers by push.
    channels = {(p.record["template"] == "new_applicant", p.record["channel"]) for p in pushes}
    assert channels == {(False, "email"), (True, "push")}


def test_an_application_before_its_job_is_rejected_job_unknown_and_the_candidate_may_apply_again(
    acceptance_topology, event_producer, decided
):
    job_id = ids("job")
    early = application_record(job_id)
    _send_application(event_producer, early)
    _settle(event_producer)
    _send_job(event_producer, job_record(job_id))
    _settle(event_producer)
    again = application_record(job_id, candidate_id=early["candidate_id"])
    _send_application(event_producer, again)
    event_producer.flush()

    outputs = decided.read(_for_jobs(acceptance_topology, job_id), lambda kept: len(kept) >= 2, timeout_s=60)
    assert [(o.record["application_id"], o.record["reason"]) for o in outputs] == [
        (early["application_id"], "job_unknown"),
        (again["application_id"], None),
    ]


def test_kill_9_mid_stream_and_a_restart_still_decide_every_application_exactly_once(
    topology_launcher, event_producer, decided, notifications, tmp_path
):
    process = topology_launcher.create("acceptance", INPUTS, JOBSTREAM_ACCEPTANCE_INSTANCE_ID="pod-0").start()
    job_id = ids("job")
    mine = _for_jobs(process, job_id)
    _send_job(event_producer, job_record(job_id))
    _settle(event_producer)
    warm_up = application_record(job_id)
    _send_application(event_producer, warm_up)
    event_producer.flush()
    decided.read(mine, lambda kept: len(kept) >= 1, timeout_s=60)  # the process is up and deciding

    applications = [warm_up] + [application_record(job_id) for _ in range(400)]
    # Applications keep arriving while the process dies: it is killed with a transaction open.
    stream = threading.Thread(target=_trickle, args=(event_producer, applications[1:], 0.01))
    stream.start()
    decided.read(mine, lambda kept: len(kept) >= 50, timeout_s=60)
    process.kill()
    seen_before_kill = len(decided.kept)
    stream.join()
    for record in applications[:150]:  # redeliveries of what came before the kill
        _send_application(event_producer, record)
    event_producer.flush()
    assert 50 <= seen_before_kill < len(applications)
    # A fresh state directory: the restarted instance must rebuild every job's state from the changelog.
    process.start(JOBSTREAM_ACCEPTANCE_STATE_DIR=str(tmp_path / "restarted-state"))

    decided.read(mine, lambda kept: len(kept) >= len(applications), timeout_s=90)
    time.sleep(2)
    outputs = decided.read(mine, lambda kept: False, timeout_s=1)
    pushes = notifications.read(
        lambda o: (
            o.headers.get("jobstream-topology") == process.group.encode()
            and o.record["params"].get("job_id") == job_id
            and o.record["template"] == "application_received"
        ),
        lambda kept: len(kept) >= len(applications),
        timeout_s=30,
    )
    process.stop()
    counts = Counter(o.record["application_id"] for o in outputs)
    assert set(counts) == {a["application_id"] for a in applications}
    assert max(counts.values()) == 1, [app for app, n in counts.items() if n > 1][:5]
    assert Counter(Counter(p.record["params"]["application_id"] for p in pushes).values()) == {1: len(applications)}
    assert "Recovery successful" in process.log()


def test_a_20s_pause_fences_the_producer_and_the_process_recovers_by_itself_deciding_each_application_once(
    topology_launcher, event_producer, decided
):
    process = topology_launcher.create("acceptance", INPUTS).start()
    job_id = ids("job")
    mine = _for_jobs(process, job_id)
    _send_job(event_producer, job_record(job_id))
    _settle(event_producer)
    applications = [application_record(job_id) for _ in range(300)]
    _send_application(event_producer, applications[0])
    event_producer.flush()
    decided.read(mine, lambda kept: len(kept) >= 1, timeout_s=60)

    stream = threading.Thread(target=_trickle, args=(event_producer, applications[1:], 0.02))
    stream.start()
    decided.read(mine, lambda kept: len(kept) >= 40, timeout_s=60)
    assert process.process is not None
    # A GC pause or a VM stall: longer than the session and transaction timeouts (10 s each by default).
    process.process.send_signal(signal.SIGSTOP)
    time.sleep(20)
    process.process.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    stream.join()

    decided.read(mine, lambda kept: len(kept) >= len(applications), timeout_s=60)
    recovered_s = time.monotonic() - resumed
    time.sleep(2)
    outputs = decided.read(mine, lambda kept: False, timeout_s=1)
    assert process.alive(), process.log()[-3000:]
    counts = Counter(o.record["application_id"] for o in outputs)
    assert set(counts) == {a["application_id"] for a in applications}
    assert max(counts.values()) == 1, [app for app, n in counts.items() if n > 1][:5]
    assert recovered_s < 45, f"deciding again took {recovered_s:.0f}s after the pause"
    assert process.metric("jobstream_topology_recoveries_total") >= 1, process.log()[-3000:]
    process.stop()


def _trickle(producer, records, pause_s):
    for record in records:
        _send_application(producer, record)
        time.sleep(pause_s)
    producer.flush()
