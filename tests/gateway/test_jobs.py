import uuid
from datetime import UTC, datetime

import pytest

from gateway.http.principal import Role
from schemas import load_event_schemas
from tests.kafka_helpers import consume_until

pytestmark = pytest.mark.anyio

EVENTS = load_event_schemas()
JOB = {
    "title": "Platform engineer",
    "description": "Kafka, Python and a taste for backpressure.",
    "location": "Lisbon",
    "remote": True,
    "salary_min": 50_000,
    "salary_max": 70_000,
    "currency": "EUR",
    "tags": ["python", "kafka"],
    "deadline": "2027-01-31T12:00:00Z",
}


@pytest.fixture
def read_model(mysql):
    """Inserts rows into the read models as a sink would; removes exactly the rows it inserted afterwards."""
    inserted: list[tuple[str, str, str]] = []
    now = datetime.now(UTC).replace(tzinfo=None)

    class ReadModel:
        def job(self, company_id: str, **overrides) -> str:
            job_id = str(uuid.uuid4())
            row = {
                "job_id": job_id,
                "company_id": company_id,
                "title": "Read model job",
                "description": "Lives only in MySQL.",
                "location": "Porto",
                "remote": False,
                "salary_min": 30_000,
                "salary_max": 40_000,
                "currency": "EUR",
                "status": "open",
                "max_applications": None,
                "deadline": None,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                **overrides,
            }
            tags = row.pop("tags", [])
            self._insert("jobs", row)
            inserted.append(("jobs", "job_id", job_id))
            for tag in tags:
                self._insert("job_tags", {"tag": tag, "job_id": job_id})
            inserted.append(("job_tags", "job_id", job_id))
            return job_id

        def application(self, job_id: str, candidate_id: str, status: str = "accepted") -> str:
            application_id = str(uuid.uuid4())
            self._insert(
                "applications",
                {
                    "application_id": application_id,
                    "job_id": job_id,
                    "candidate_id": candidate_id,
                    "status": status,
                    "stage": "submitted",
                    "submitted_at": now,
                    "updated_at": now,
                    "version": 1,
                },
            )
            inserted.append(("applications", "application_id", application_id))
            return application_id

        def _insert(self, table: str, row: dict) -> None:
            columns = ", ".join(row)
            with mysql.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values())
                )

    yield ReadModel()
    with mysql.cursor() as cursor:
        for table, column, value in inserted:
            cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", (value,))


def _keyed(consumer, job_id: str, expect: int, event: str = "job_lifecycle") -> list[dict]:
    """The job's events: waits for `expect` of them, then 1.5 s longer so that an extra one would show."""
    keep = lambda m: m.key() == job_id.encode()  # noqa: E731
    messages = consume_until(consumer, lambda kept: len(kept) >= expect, 10, keep=keep)
    messages += consume_until(consumer, lambda kept: False, 1.5, keep=keep)
    return [EVENTS[event].decode(m.value()) for m in messages]


async def test_an_employer_creates_updates_and_closes_a_job_each_event_carrying_the_whole_job(
    gateway_factory, mint_token, kafka_tail
):
    consumer = kafka_tail("job.lifecycle")
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    employer_id, headers = mint_token(Role.EMPLOYER, company_id)

    created = await client.post("/v1/jobs", json=JOB, headers=headers)
    job_id = created.json()["job_id"]
    updated = await client.patch(f"/v1/jobs/{job_id}", json={"title": "Staff engineer", "tags": []}, headers=headers)
    closed = await client.post(f"/v1/jobs/{job_id}/close", headers=headers)
    closed_again = await client.post(f"/v1/jobs/{job_id}/close", headers=headers)

    assert (created.status_code, updated.status_code, closed.status_code) == (202, 202, 202), created.text
    assert (closed_again.status_code, closed_again.json()["error"]["code"]) == (409, "job_closed")
    events = _keyed(consumer, job_id, expect=3)
    assert [e["kind"] for e in events] == ["created", "updated", "closed"]
    assert all(e["company_id"] == company_id and e["employer_id"] == employer_id for e in events)
    assert events[0]["title"] == "Platform engineer" and events[0]["tags"] == ["python", "kafka"]
    assert events[0]["deadline"] == datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert events[1]["title"] == "Staff engineer" and events[1]["tags"] == []
    # An update carries the fields it did not change, so the compacted topic always holds the whole job.
    assert events[1]["location"] == events[2]["location"] == "Lisbon"
    assert events[2]["salary_max"] == 70_000


async def test_an_employer_cannot_change_another_companys_job(gateway_factory, mint_token, kafka_tail):
    consumer = kafka_tail("job.lifecycle")
    client = await gateway_factory()
    _, owner = mint_token(Role.EMPLOYER, str(uuid.uuid4()))
    _, rival = mint_token(Role.EMPLOYER, str(uuid.uuid4()))
    _, candidate = mint_token(Role.CANDIDATE)

    job_id = (await client.post("/v1/jobs", json=JOB, headers=owner)).json()["job_id"]
    close = await client.post(f"/v1/jobs/{job_id}/close", headers=rival)
    patch = await client.patch(f"/v1/jobs/{job_id}", json={"title": "Mine now"}, headers=rival)
    as_candidate = await client.post(f"/v1/jobs/{job_id}/close", headers=candidate)

    assert (close.status_code, close.json()["error"]["code"]) == (403, "forbidden")
    assert patch.status_code == 403
    assert as_candidate.status_code == 403
    assert [e["kind"] for e in _keyed(consumer, job_id, expect=1)] == ["created"]


async def test_a_job_known_only_to_the_read_model_can_be_updated(gateway_factory, mint_token, kafka_tail, read_model):
    consumer = kafka_tail("job.lifecycle")
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    _, headers = mint_token(Role.EMPLOYER, company_id)
    job_id = read_model.job(company_id, tags=["sql", "rust"])

    response = await client.patch(f"/v1/jobs/{job_id}", json={"salary_max": 45_000}, headers=headers)
    missing = await client.patch(f"/v1/jobs/{uuid.uuid4()}", json={"salary_max": 45_000}, headers=headers)

    assert response.status_code == 202, response.text
    assert missing.status_code == 404
    [event] = _keyed(consumer, job_id, expect=1)
    assert (event["kind"], event["title"], event["salary_max"]) == ("updated", "Read model job", 45_000)
    assert event["tags"] == ["rust", "sql"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**JOB, "title": ""}, "title"),
        ({**JOB, "currency": "euro"}, "currency"),
        ({**JOB, "salary_min": -1}, "salary_min"),
        ({**JOB, "salary_min": 9, "salary_max": 8}, "salary_max"),
        ({**JOB, "remote": "yes"}, "remote"),
        ({**JOB, "tags": ["ok", "Not Ok"]}, "tags[1]"),
        ({**JOB, "deadline": "next tuesday"}, "deadline"),
        ({**JOB, "owner": "me"}, "owner"),
        ({k: v for k, v in JOB.items() if k != "location"}, "location"),
    ],
)
async def test_each_invalid_job_names_its_field(gateway_factory, mint_token, body, field):
    client = await gateway_factory()
    _, headers = mint_token(Role.EMPLOYER, str(uuid.uuid4()))

    response = await client.post("/v1/jobs", json=body, headers=headers)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_job_title_carrying_a_header_injection_is_refused_but_a_description_keeps_its_line_breaks(
    gateway_factory, mint_token
):
    client = await gateway_factory()
    _, headers = mint_token(Role.EMPLOYER, str(uuid.uuid4()))

    injected = await client.post("/v1/jobs", json={**JOB, "title": "Dev\r\nBcc: x@evil.io"}, headers=headers)
    located = await client.post("/v1/jobs", json={**JOB, "location": "Lisbon\u2028Porto"}, headers=headers)
    described = await client.post("/v1/jobs", json={**JOB, "description": "One.\r\n\tTwo."}, headers=headers)
    searched = await client.get("/v1/jobs", params={"q": "dev\nops"})

    assert injected.status_code == 422, injected.text
    assert injected.json()["error"] == {
        "code": "invalid_field",
        "message": "must not contain control characters or line breaks (found U+000D)",
        "field": "title",
    }
    assert (located.status_code, located.json()["error"]["field"]) == (422, "location")
    assert (searched.status_code, searched.json()["error"]["field"]) == (422, "q")
    assert described.status_code == 202, described.text
    assert described.json()["description"] == "One.\r\n\tTwo."


async def test_only_the_jobs_employer_moves_an_application_along_the_pipeline(
    gateway_factory, mint_token, kafka_tail, read_model
):
    consumer = kafka_tail("application.stage_changed")
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    employer_id, owner = mint_token(Role.EMPLOYER, company_id)
    _, rival = mint_token(Role.EMPLOYER, str(uuid.uuid4()))
    job_id = read_model.job(company_id)
    candidate_id = str(uuid.uuid4())
    accepted = read_model.application(job_id, candidate_id)
    pending = read_model.application(job_id, str(uuid.uuid4()), status="pending")

    by_rival = await client.post(f"/v1/applications/{accepted}/stage", json={"stage": "interview"}, headers=rival)
    bad_stage = await client.post(f"/v1/applications/{accepted}/stage", json={"stage": "fired"}, headers=owner)
    not_yet = await client.post(f"/v1/applications/{pending}/stage", json={"stage": "reviewed"}, headers=owner)
    by_owner = await client.post(f"/v1/applications/{accepted}/stage", json={"stage": "interview"}, headers=owner)

    assert by_rival.status_code == 403
    assert (bad_stage.status_code, bad_stage.json()["error"]["field"]) == (422, "stage")
    assert (not_yet.status_code, not_yet.json()["error"]["code"]) == (409, "not_accepted")
    assert by_owner.status_code == 202, by_owner.text
    [event] = _keyed(consumer, job_id, expect=1, event="application_stage_changed")
    assert (event["application_id"], event["stage"], event["changed_by"]) == (accepted, "interview", employer_id)
    assert event["candidate_id"] == candidate_id  # v2: whom the acceptance topology notifies


async def test_job_search_filters_the_read_model_and_serves_repeats_from_the_cache(
    gateway_factory, gateway_metrics, mint_token, read_model
):
    client = await gateway_factory()
    word = f"zq{uuid.uuid4().hex[:12]}"
    company_id = str(uuid.uuid4())
    in_porto = read_model.job(company_id, title=f"Engineer {word}", tags=["python"])
    in_faro = read_model.job(company_id, title=f"Analyst {word}", location="Faro", remote=True)
    read_model.job(company_id, title=f"Closed {word}", status="closed")

    everything = await client.get("/v1/jobs", params={"q": word})
    again = await client.get("/v1/jobs", params={"q": word})
    remote = await client.get("/v1/jobs", params={"q": word, "remote": "true"})
    tagged = await client.get("/v1/jobs", params={"q": word, "tag": "python", "location": "Porto"})
    bad = await client.get("/v1/jobs", params={"q": word, "limit": "500"})
    metrics = gateway_metrics(client)

    assert sorted(j["job_id"] for j in everything.json()["items"]) == sorted([in_porto, in_faro])
    assert again.json() == everything.json()
    assert [j["job_id"] for j in remote.json()["items"]] == [in_faro]
    assert [j["job_id"] for j in tagged.json()["items"]] == [in_porto]
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "limit")
    assert 'gateway_cache_lookups_total{cache="job_search",result="hit"} 1.0' in metrics


async def test_a_non_ascii_digit_in_salary_min_gets_422_naming_it_not_a_500(gateway_factory):
    client = await gateway_factory()

    responses = [await client.get("/v1/jobs", params={"salary_min": raw}) for raw in ("²", "٣", "1_000", "9" * 5_000)]

    assert [(r.status_code, r.json()["error"]["field"]) for r in responses] == [(422, "salary_min")] * 4
    assert responses[0].json()["error"]["message"] == "must be an integer from 0 to 2147483647"


async def test_sql_injection_strings_are_stored_and_searched_as_text(gateway_factory, mint_token, read_model):
    client = await gateway_factory()
    # Unique per run: an identical search would be answered from the 60 s search cache.
    injection = f"x' OR '1'='1'; DROP TABLE jobs; -- {uuid.uuid4().hex[:8]}"
    job_id = read_model.job(str(uuid.uuid4()), title=injection, location=injection)

    by_location = await client.get("/v1/jobs", params={"location": injection})
    by_text = await client.get("/v1/jobs", params={"q": "' OR 1=1 --", "location": "nowhere' OR '1'='1"})
    detail = await client.get(f"/v1/jobs/{job_id}")

    assert [j["job_id"] for j in by_location.json()["items"]] == [job_id]
    assert by_text.status_code == 200 and by_text.json()["items"] == []
    assert detail.json()["title"] == injection


async def test_job_detail_reads_through_and_records_a_view(gateway_factory, mint_token, kafka_tail, read_model):
    consumer = kafka_tail("job.viewed")
    client = await gateway_factory()
    viewer_id, headers = mint_token(Role.CANDIDATE)
    job_id = read_model.job(str(uuid.uuid4()), tags=["go"])

    first = await client.get(f"/v1/jobs/{job_id}", headers=headers)
    second = await client.get(f"/v1/jobs/{job_id}")
    missing = await client.get(f"/v1/jobs/{uuid.uuid4()}")

    assert first.status_code == 200 and first.json()["tags"] == ["go"] and first.json()["status"] == "open"
    assert second.json() == first.json()
    assert missing.status_code == 404
    messages = consume_until(consumer, lambda kept: len(kept) >= 2, 10, keep=lambda m: m.key() == job_id.encode())
    viewers = sorted(str(EVENTS["job_viewed"].decode(m.value())["viewer_id"]) for m in messages)
    assert viewers == sorted([viewer_id, "None"])


async def test_a_job_page_shows_an_edit_at_once_though_the_read_model_is_still_a_batch_behind(
    gateway_factory, mint_token
):
    client = await gateway_factory()
    _, headers = mint_token(Role.EMPLOYER, str(uuid.uuid4()))
    created = await client.post("/v1/jobs", json=JOB, headers=headers)
    job_id = created.json()["job_id"]

    before = await client.get(f"/v1/jobs/{job_id}")  # cached: no sink runs here, the read model has no such job
    edited = await client.patch(f"/v1/jobs/{job_id}", json={"title": "Edited title"}, headers=headers)
    after = await client.get(f"/v1/jobs/{job_id}")
    closed = await client.post(f"/v1/jobs/{job_id}/close", headers=headers)
    final = await client.get(f"/v1/jobs/{job_id}")

    assert before.status_code == 200 and before.json()["title"] == JOB["title"]
    assert edited.status_code == closed.status_code == 202
    assert after.json()["title"] == "Edited title"
    assert (final.json()["title"], final.json()["status"]) == ("Edited title", "closed")


async def test_a_candidate_sees_only_their_own_applications(gateway_factory, mint_token, read_model):
    client = await gateway_factory()
    candidate_id, headers = mint_token(Role.CANDIDATE)
    other_id, _ = mint_token(Role.CANDIDATE)
    job_id = read_model.job(str(uuid.uuid4()))
    mine = read_model.application(job_id, candidate_id)
    read_model.application(job_id, other_id)

    response = await client.get("/v1/me/applications", headers=headers)
    anonymous = await client.get("/v1/me/applications")

    assert [a["application_id"] for a in response.json()["items"]] == [mine]
    assert anonymous.status_code == 401
