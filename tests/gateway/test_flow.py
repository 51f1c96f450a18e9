import uuid

import pytest

from schemas import load_event_schemas
from tests.kafka_helpers import consume_until

pytestmark = pytest.mark.anyio

EVENTS = load_event_schemas()


async def _register(client, role: str) -> dict:
    body = {
        "email": f"{role}-{uuid.uuid4().hex[:12]}@example.com",
        "password": "correct horse battery staple",
        "display_name": f"A {role}",
        "role": role,
    }
    response = await client.post("/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    login = await client.post("/v1/auth/login", json={"email": body["email"], "password": body["password"]})
    assert login.status_code == 200, login.text
    return login.json()


async def test_a_new_employer_posts_a_job_and_a_new_candidate_applies_to_it(gateway_factory, kafka_tail):
    jobs = kafka_tail("job.lifecycle")
    applications = kafka_tail("application.created")
    client = await gateway_factory()
    employer = await _register(client, "employer")
    candidate = await _register(client, "candidate")

    posted = await client.post(
        "/v1/jobs",
        json={"title": "Data engineer", "description": "Streams all day.", "location": "Remote"},
        headers={"Authorization": f"Bearer {employer['access_token']}"},
    )
    job_id = posted.json()["job_id"]
    applied = await client.post(
        f"/v1/jobs/{job_id}/applications",
        json={"cover_letter": "Hello", "resume_url": "https://cv.example.com/me.pdf"},
        headers={"Authorization": f"Bearer {candidate['access_token']}"},
    )

    assert posted.status_code == 202 and applied.status_code == 202
    [job_message] = consume_until(jobs, lambda kept: bool(kept), 10, keep=lambda m: m.key() == job_id.encode())
    [application_message] = consume_until(
        applications, lambda kept: bool(kept), 10, keep=lambda m: m.key() == job_id.encode()
    )
    job_event = EVENTS["job_lifecycle"].decode(job_message.value())
    application_event = EVENTS["application_created"].decode(application_message.value())
    assert job_event["company_id"] == employer["user"]["company_id"]
    assert application_event["candidate_id"] == candidate["user"]["user_id"]
    assert application_event["application_id"] == applied.json()["application_id"]
