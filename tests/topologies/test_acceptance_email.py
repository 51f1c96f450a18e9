"""The candidate's notifications from the acceptance topology: email to their own address (resolved by the
notifications stage) unless the application carried contact_email, on every decision and every stage change."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from schemas import examples
from schemas.topics import NOTIFICATION_REQUESTED
from tests.topologies.test_acceptance import DictState, _send_application, _send_job, _settle
from tests.topology_harness import EVENTS, TopicReader, application_record, ids, job_record
from topologies.acceptance.messages import OWN_EMAIL, decision_messages, stage_messages
from topologies.acceptance.rules import JobBook, Rejection
from topologies.notifications.templates import render


def _notifications(messages):
    return {m.record["template"]: m.record for m in messages if m.topic == NOTIFICATION_REQUESTED}


@pytest.mark.unit
def test_the_candidate_is_emailed_at_their_own_address_and_the_employer_pushed():
    book = JobBook(DictState())
    job = book.apply_lifecycle(job_record("job-mail", max_applications=1))
    accepted = _notifications(decision_messages(book.decide(application_record("job-mail"))))
    rejected = _notifications(decision_messages(book.decide(application_record("job-mail"))))

    received, applicant, refused = (
        accepted["application_received"],
        accepted["new_applicant"],
        rejected["application_rejected"],
    )
    assert (received["channel"], received["address"]) == ("email", OWN_EMAIL)
    assert (refused["channel"], refused["address"]) == ("email", OWN_EMAIL)
    assert (applicant["channel"], applicant["address"], applicant["recipient_id"]) == (
        "push",
        job.employer_id,
        job.employer_id,
    )


@pytest.mark.unit
@pytest.mark.parametrize("contact", [{}, {"contact_email": None}, {"contact_email": ""}])
def test_without_contact_email_the_address_is_left_to_the_notifications_stage(contact):
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-own"))
    [candidate] = [
        m.record
        for m in decision_messages(book.decide(application_record("job-own", **contact)))
        if m.topic == NOTIFICATION_REQUESTED and m.record["template"] == "application_received"
    ]
    assert (candidate["channel"], candidate["address"]) == ("email", OWN_EMAIL)


@pytest.mark.unit
def test_an_older_application_with_contact_email_is_still_emailed_there():
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-v3"))
    [candidate] = [
        m.record
        for m in decision_messages(book.decide(application_record("job-v3", contact_email="a@x.test")))
        if m.topic == NOTIFICATION_REQUESTED and m.record["template"] == "application_received"
    ]
    assert (candidate["channel"], candidate["address"]) == ("email", "a@x.test")


@pytest.mark.unit
def test_no_param_carries_an_id_where_a_name_belongs():
    book = JobBook(DictState())
    job = book.apply_lifecycle(job_record("job-names", title="Data engineer"))
    application = application_record("job-names")
    for message in decision_messages(book.decide(application)):
        if message.topic != NOTIFICATION_REQUESTED:
            continue
        params = message.record["params"]
        assert params["job_title"] == "Data engineer"
        assert not {"candidate_name", "employer_name", "company_name"} & params.keys()
        named = set(params.values()) - {params["application_id"], params["job_id"], params["candidate_id"]}
        assert not named & {application["candidate_id"], job.company_id, job.employer_id}


@pytest.mark.unit
def test_the_notification_id_does_not_depend_on_the_address():
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-ids"))
    application = application_record("job-ids", contact_email="c@x.test")
    decision = book.decide(application)
    by_contact = decision_messages(decision)
    by_own = decision_messages(dataclasses.replace(decision, application={**application, "contact_email": None}))
    assert [m.record.get("notification_id") for m in by_contact] == [m.record.get("notification_id") for m in by_own]


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
    application = application_record("job-render")
    decision = book.decide(application)
    assert decision.reason is reason
    [email] = [
        m.record
        for m in decision_messages(decision)
        if m.topic == NOTIFICATION_REQUESTED and m.record["channel"] == "email"
    ]
    rendered = render(email["template"], "email", email["params"])
    assert email["template"] == ("application_received" if reason is None else "application_rejected")
    assert (email["params"]["job_title"] in rendered.title) and rendered.body.startswith("Hello,\n")
    assert application["job_id"] not in rendered.title + rendered.body
    if reason is not None:
        assert email["params"]["reason"] in rendered.body


@pytest.mark.unit
@pytest.mark.parametrize("stage", ["reviewed", "interview", "offer", "hired", "declined"])
def test_a_stage_change_emails_the_candidate_with_the_jobs_title_under_an_id_of_application_and_stage(stage):
    book = JobBook(DictState())
    job = book.apply_lifecycle(job_record("job-stage", title="Site reliability engineer"))
    change = examples.application_stage_changed(ids("app"), "job-stage", stage)

    [message] = stage_messages(change, job)
    [again] = stage_messages({**change, "event_id": ids("event")}, job)  # the same move, redelivered or repeated
    [other] = stage_messages({**change, "stage": "reviewed" if stage != "reviewed" else "offer"}, job)

    request = message.record
    assert (message.topic, request["recipient_id"], request["channel"], request["address"]) == (
        NOTIFICATION_REQUESTED,
        change["candidate_id"],
        "email",
        OWN_EMAIL,
    )
    assert (request["template"], request["params"]["stage"]) == ("stage_changed", stage)
    assert again.record["notification_id"] == request["notification_id"] != other.record["notification_id"]
    rendered = render(request["template"], "email", request["params"])
    assert rendered.title.startswith("Your application for Site reliability engineer ")
    assert stage not in ("interview", "offer") or stage in rendered.body


@pytest.mark.unit
def test_a_stage_change_without_candidate_or_job_notifies_nobody():
    job = JobBook(DictState()).apply_lifecycle(job_record("job-v1"))
    change = examples.application_stage_changed(ids("app"), "job-v1", "interview")
    assert stage_messages({**change, "candidate_id": None}, job) == []  # a v1 event
    assert stage_messages(change, None) == []


@pytest.mark.unit
def test_applications_decoded_from_each_version_are_emailed():
    event = EVENTS["application_created"]
    book = JobBook(DictState())
    book.apply_lifecycle(job_record("job-versions"))
    addresses = []
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
        addresses.append((version.version, candidate["channel"], candidate["address"]))
    assert addresses == [(v.version, "email", "e@x.test" if v.version >= 3 else OWN_EMAIL) for v in event.versions]


@pytest.fixture
def notifications(settings):
    reader = TopicReader(settings.kafka, "notification.requested", EVENTS["notification_requested"])
    yield reader
    reader.close()


def test_the_topology_notifies_the_candidate_of_each_decision_and_stage_change(
    acceptance_topology, event_producer, notifications
):
    accepted_job, unknown_job = ids("job"), ids("job")
    _send_job(event_producer, job_record(accepted_job, title="Kafka operator"))
    _settle(event_producer)
    address = f"{ids('cand')}@example.test"
    with_email = application_record(accepted_job, contact_email=address)
    own_email = application_record(accepted_job)
    rejected = application_record(unknown_job)
    for record in (with_email, own_email, rejected):
        _send_application(event_producer, record)
    _settle(event_producer)
    moved = examples.application_stage_changed(
        own_email["application_id"], accepted_job, "interview", candidate_id=own_email["candidate_id"]
    )
    event_producer.send("application.stage_changed", "application_stage_changed", moved)
    event_producer.flush()
    group = acceptance_topology.group.encode()
    wanted = {r["application_id"] for r in (with_email, own_email, rejected)}

    outputs = notifications.read(
        lambda o: o.headers.get("jobstream-topology") == group and o.record["params"].get("application_id") in wanted,
        lambda kept: len(kept) >= 6,  # three candidates, two employers (accepted ones), one stage change
        timeout_s=60,
    )

    by_template = {(o.record["params"]["application_id"], o.record["template"]): o for o in outputs}
    email = by_template[(with_email["application_id"], "application_received")]
    own = by_template[(own_email["application_id"], "application_received")]
    refused = by_template[(rejected["application_id"], "application_rejected")]
    stage = by_template[(own_email["application_id"], "stage_changed")]
    assert (email.record["channel"], email.record["address"]) == ("email", address)
    assert email.key == with_email["candidate_id"].encode()  # still keyed by recipient id
    assert (own.record["channel"], own.record["address"]) == ("email", OWN_EMAIL)
    assert (refused.record["channel"], refused.record["address"]) == ("email", OWN_EMAIL)
    assert stage.key == own_email["candidate_id"].encode()
    assert (stage.record["params"]["job_title"], stage.record["params"]["stage"]) == ("Kafka operator", "interview")
    employers = [o.record for o in outputs if o.record["template"] == "new_applicant"]
    assert len(employers) == 2 and all(e["channel"] == "push" and e["address"] == e["recipient_id"] for e in employers)
