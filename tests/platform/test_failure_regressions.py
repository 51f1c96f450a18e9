"""Regressions for what took the platform down or lost an application, each through the real processes.

The other findings have their own tests: Redis and the acceptance process paused under load in test_chaos,
slow-body clients in test_gateway_body_deadline and test_gateway_server, `salary_min=²` in test_gateway_jobs.
"""

from __future__ import annotations

import uuid

import pytest

from stack.smtp import SmtpCapture, wait_for_mail
from tests.e2e_harness import (
    APPLICATION_BODY,
    Webhook,
    eventually,
    gateway_client,
    mysql_url,
    register,
    rows,
    with_database,
)
from tests.topology_harness import EventProducer, application_record, ids, job_record

ACCEPTANCE_INPUTS = ["job.lifecycle", "application.created", "application.stage_changed"]
INJECTED_TITLE = "Dev\r\nBcc: x@evil.io"


@pytest.fixture
def acceptance(services):
    return services.topology("acceptance", ACCEPTANCE_INPUTS).start()


def test_a_job_title_with_a_header_injection_in_the_log_sends_a_one_line_subject_and_the_stage_goes_on(
    settings, services, acceptance, tmp_path
):
    """The title was accepted before the gateway refused control characters, so it sits in job.lifecycle:
    the email still goes out, to its one recipient, and the notifications stage stays up for the next one."""
    producer = EventProducer(settings.kafka)
    with SmtpCapture(tmp_path / "mail") as smtp, Webhook() as webhook:
        notifications = services.notifications(smtp.port, webhook.url).start()
        injected, plain = ids("job"), ids("job")
        producer.send("job.lifecycle", "job_lifecycle", job_record(injected, title=INJECTED_TITLE))
        producer.send("job.lifecycle", "job_lifecycle", job_record(plain))
        producer.flush()
        first, second = (f"candidate-{uuid.uuid4().hex[:8]}@example.test" for _ in range(2))
        producer.send("application.created", "application_created", application_record(injected, contact_email=first))
        producer.flush()
        [mail] = wait_for_mail(smtp.directory, lambda m: m["To"] == first, timeout_s=60)
        producer.send("application.created", "application_created", application_record(plain, contact_email=second))
        producer.flush()
        assert wait_for_mail(smtp.directory, lambda m: m["To"] == second, timeout_s=60), notifications.log_tail()
        assert notifications.alive() and acceptance.alive(), notifications.log_tail()
    assert mail["Subject"] == "We received your application for Dev Bcc: x@evil.io"
    assert mail["Bcc"] is None
    assert not any("evil" in mail.get(header, "") for header in ("To", "Cc", "Bcc"))


@pytest.mark.anyio
async def test_two_candidates_who_send_the_same_idempotency_key_each_get_their_application_decided(
    settings, services, acceptance, scratch_database
):
    database_url = mysql_url(settings.mysql, scratch_database)
    services.mysql_sink(database_url).start()
    async with gateway_client(with_database(settings, settings.mysql, scratch_database)) as client:
        employer = await register(client, "employer")
        posted = await client.post(
            "/v1/jobs",
            json={"title": "Same key", "description": "Two candidates, one key.", "location": "Remote"},
            headers=employer["headers"],
        )
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["job_id"]
        key = f"shared-key-{uuid.uuid4().hex[:8]}"
        accepted = []
        for _ in range(2):
            candidate = await register(client, "candidate")
            response = await client.post(
                f"/v1/jobs/{job_id}/applications",
                json=APPLICATION_BODY,
                headers={**candidate["headers"], "Idempotency-Key": key},
            )
            assert response.status_code == 202, response.text
            accepted.append(response.json()["application_id"])
    assert len(set(accepted)) == 2

    def decided() -> tuple:
        found = rows(
            settings.mysql,
            scratch_database,
            "SELECT application_id, status FROM applications WHERE application_id IN %s",
            (accepted,),
        )
        return found if len(found) == 2 else ()

    found = await eventually(decided, 60, "both applications decided in MySQL")
    assert {row[1] for row in found} == {"accepted"}, found
