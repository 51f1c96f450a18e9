"""The candidate's notification goes by email when the application carries contact_email, else push as before."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from schemas.topics import NOTIFICATION_REQUESTED
from tests.topologies.test_acceptance import DictState, _send_application, _send_job, _settle
from tests.topology_harness import EVENTS, TopicReader, application_record, ids, job_record
from topologies.acceptance.messages import decision_messages
from topologies.acceptance.rules import JobBook, Rejection
from topologies.notifications.templates import render


def _notifications(messages):
    return {m.record["template"]: m.record for m in messages if m.topic == NOTIFICATION_REQUESTED}


@pytest.mark.unit
def test_an_application_with_contact_email_notifies_the_candidate_by_email_and_the_employer_by_push():
    book = JobBook(DictState())
    job = book.apply_lifecycle(job_record("job-mail", max_applications=1))
    accepted = _notifications(decision_messages(book.decide(application_record("job-mail", contact_email="a@x.test"))))
    rejected = _notifications(decision_messages(book.decide(application_record("job-mail", contact_email="b@x.test"))))

    received, applicant, refused = (
        accepted["application_received"],
        accepted["new_applicant"],
        rejected["application_rejected"],
    )
    assert (received["channel"], received["address"]) == ("email", "a@x.test")
    assert (refused["channel"], refused["address"]) == ("email", "b@x.test")
    assert (applicant["channel"], applicant["address"], applicant["recipient_id"]) == (
        "push",
        job.employer_id,
        job.employer_id,
    )
    assert "a@x.test" not in applicant["params"].values()  # the employer's message is as it was


@pytest.mark.unit
@pytest.mark.parametrize("contact", [{}, {"contact_email": None}, {"contact_email": ""}])
def test_an_application_without_contact_email_falls_back_to_push_to_the_candidate_id(contact):
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-push"))
    application = application_record("job-push", **contact)
    [candidate] = [
        m.record
        for m in decision_messages(book.decide(application))
        if m.topic == NOTIFICATION_REQUESTED and m.record["template"] == "application_received"
    ]
    assert (candidate["channel"], candidate["address"]) == ("push", application["candidate_id"])


@pytest.mark.unit
def test_the_notification_id_does_not_depend_on_the_channel():
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-ids"))
    application = application_record("job-ids", contact_email="c@x.test")
    decision = book.decide(application)
    by_email = decision_messages(decision)
    by_push = decision_messages(dataclasses.replace(decision, application={**application, "contact_email": None}))
    assert [m.record.get("notification_id") for m in by_email] == [m.record.get("notification_id") for m in by_push]


_PAST = datetime.now(UTC) - timedelta(days=1)


@pytest.mark.parametrize(
    ("lifecycle", "reason"),
    [
        ([job_record("job-render", title="Data engineer")], None),
        ([job_record("job-render", title="Data engineer", max_applications=0)], Rejection.JOB_FULL),
        ([job_record("job-render", title="Data engineer", deadline=_PAST)], Rejection.PAST_DEADLINE),
        (
            [job_record("job-render", title="Data engineer"), job_record("job-render", kind="closed")],
            Rejection.JOB_CLOSED,
        ),
        ([], Rejection.JOB_UNKNOWN),
    ],
)
@pytest.mark.unit
def test_the_email_channel_renders_the_candidates_template_from_the_params_sent(lifecycle, reason):
    book = JobBook(DictState())
    for event in lifecycle:
        book.apply_lifecycle(event)
    decision = book.decide(application_record("job-render", contact_email="d@x.test"))
    assert decision.reason is reason
    [email] = [
        m.record
        for m in decision_messages(decision)
        if m.topic == NOTIFICATION_REQUESTED and m.record["channel"] == "email"
    ]
    rendered = render(email["template"], "email", email["params"])
    assert email["template"] == ("application_received" if reason is None else "application_rejected")
    assert (email["params"]["job_title"] in rendered.title) and rendered.body.startswith("Hello ")
    if reason is not None:
        assert email["params"]["reason"] in rendered.body


@pytest.mark.unit
def test_applications_decoded_from_each_version_pick_the_channel_by_contact_email():
    event = EVENTS["application_created"]
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-versions"))
    channels = []
    for version in event.versions:
        record = application_record("job-versions", contact_email="e@x.test", referral_source=None)
        fields = {field["name"] for field in version.schema["fields"]}
        written = {name: value for name, value in record.items() if name in fields}
        decoded = event.decode(event.encode_with(version, written))
        [candidate] = [
            m.record
            for m in decision_messages(book.decide(decoded))
            if m.topic == NOTIFICATION_REQUESTED and m.record["recipient_id"] == record["candidate_id"]
        ]
        channels.append((version.version, candidate["channel"]))
    assert channels == [(v.version, "email" if v.version >= 3 else "push") for v in event.versions]


@pytest.fixture
def notifications(settings):
    reader = TopicReader(settings.kafka_bootstrap, "notification.requested", EVENTS["notification_requested"])
    yield reader
    reader.close()


def test_the_topology_emails_a_candidate_with_contact_email_and_pushes_to_one_without(
    acceptance_topology, event_producer, notifications
):
    accepted_job, unknown_job = ids("job"), ids("job")
    _send_job(event_producer, job_record(accepted_job))
    _settle(event_producer)
    address = f"{ids('cand')}@example.test"
    with_email = application_record(accepted_job, contact_email=address)
    without_email = application_record(accepted_job)
    rejected_with_email = application_record(unknown_job, contact_email=f"other-{address}")
    for record in (with_email, without_email, rejected_with_email):
        _send_application(event_producer, record)
    event_producer.flush()
    group = acceptance_topology.group.encode()
    wanted = {r["application_id"] for r in (with_email, without_email, rejected_with_email)}

    outputs = notifications.read(
        lambda o: o.headers.get("jobstream-topology") == group and o.record["params"].get("application_id") in wanted,
        lambda kept: len(kept) >= 5,  # three candidates, two employers (accepted ones)
        timeout_s=60,
    )

    candidates = {o.record["params"]["application_id"]: o for o in outputs if o.record["template"] != "new_applicant"}
    email, push, rejected = (candidates[r["application_id"]] for r in (with_email, without_email, rejected_with_email))
    assert (email.record["channel"], email.record["address"]) == ("email", address)
    assert email.record["template"] == "application_received"
    assert email.key == with_email["candidate_id"].encode()  # still keyed by recipient id
    assert (push.record["channel"], push.record["address"]) == ("push", without_email["candidate_id"])
    assert (rejected.record["channel"], rejected.record["address"]) == ("email", f"other-{address}")
    assert rejected.record["template"] == "application_rejected"
    employers = [o.record for o in outputs if o.record["template"] == "new_applicant"]
    assert len(employers) == 2 and all(e["channel"] == "push" and e["address"] == e["recipient_id"] for e in employers)
