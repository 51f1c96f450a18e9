"""What employers read: their company's jobs with counts, a job's applicants filtered, sorted and keyset-paged, and one
application with its stage history (also for its candidate). Rows are put in the read models as the sinks write them."""

import uuid

import pytest

from gateway.http.principal import Role

pytestmark = pytest.mark.anyio


async def test_an_employer_pages_through_its_company_jobs_newest_first_with_counts(
    gateway_factory, mint_token, read_models
):
    company = str(uuid.uuid4())
    oldest = read_models.job(company, 1)
    middle = read_models.job(company, 2, status="closed", applications=5, accepted=3, rejected=2, hired=1)
    newest = read_models.job(company, 3)
    read_models.job(str(uuid.uuid4()), 4)  # another company's
    client = await gateway_factory()
    _, headers = mint_token(Role.EMPLOYER, company)

    first = (await client.get("/v1/me/jobs", params={"limit": 2}, headers=headers)).json()
    second = (
        await client.get("/v1/me/jobs", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)
    ).json()
    closed = (await client.get("/v1/me/jobs", params={"status": "closed"}, headers=headers)).json()

    assert [job["job_id"] for job in first["items"]] == [newest, middle]
    assert [job["job_id"] for job in second["items"]] == [oldest] and second["next_cursor"] is None
    assert first["items"][1]["counts"] == {
        "applications": 5, "accepted": 3, "rejected": 2, "reviewed": 0, "interview": 0, "offer": 0, "hired": 1,
        "declined": 0,
    }  # fmt: skip
    assert set(first["items"][0]["counts"].values()) == {0}
    assert [job["job_id"] for job in closed["items"]] == [middle]


async def test_a_job_applicants_filter_sort_and_page_without_repeats(gateway_factory, mint_token, read_models):
    company = str(uuid.uuid4())
    job = read_models.job(company, 0)
    ids = [read_models.application(job, minute) for minute in range(1, 6)]
    interview = read_models.application(job, 6, stage="interview")
    rejected = read_models.application(job, 7, status="rejected")
    client = await gateway_factory()
    _, headers = mint_token(Role.EMPLOYER, company)
    path = f"/v1/jobs/{job}/applications"

    pages, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "oldest", **({"cursor": cursor} if cursor else {})}
        body = (await client.get(path, params=params, headers=headers)).json()
        pages.append([item["application_id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    newest = (await client.get(path, params={"limit": 2}, headers=headers)).json()
    at_interview = (await client.get(path, params={"stage": "interview"}, headers=headers)).json()
    refused = (await client.get(path, params={"status": "rejected"}, headers=headers)).json()

    assert [app for page in pages for app in page] == [*ids, interview, rejected]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [item["application_id"] for item in newest["items"]] == [rejected, interview]
    assert [item["application_id"] for item in at_interview["items"]] == [interview]
    assert [(i["application_id"], i["rejection_reason"]) for i in refused["items"]] == [(rejected, "job_full")]


async def test_only_the_job_company_and_admins_see_its_applicants(gateway_factory, mint_token, read_models):
    job = read_models.job(str(uuid.uuid4()), 0)
    read_models.application(job, 1)
    client = await gateway_factory()
    path = f"/v1/jobs/{job}/applications"

    other = await client.get(path, headers=mint_token(Role.EMPLOYER, str(uuid.uuid4()))[1])
    candidate = await client.get(path, headers=mint_token(Role.CANDIDATE)[1])
    admin = await client.get(path, headers=mint_token(Role.ADMIN)[1])
    unknown = await client.get(f"/v1/jobs/{uuid.uuid4()}/applications", headers=mint_token(Role.ADMIN)[1])

    assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden")
    assert candidate.status_code == 403
    assert admin.status_code == 200 and len(admin.json()["items"]) == 1
    assert unknown.status_code == 404


async def test_an_application_detail_shows_its_history_to_its_candidate_and_employers_only(
    gateway_factory, mint_token, read_models
):
    company = str(uuid.uuid4())
    job = read_models.job(company, 0)
    candidate, candidate_headers = mint_token(Role.CANDIDATE)
    application = read_models.application(job, 1, stage="interview", candidate_id=candidate)
    read_models.stage(application, "reviewed", 2)
    read_models.stage(application, "interview", 3)
    client = await gateway_factory()
    path = f"/v1/applications/{application}"

    mine = await client.get(path, headers=candidate_headers)
    employer = await client.get(path, headers=mint_token(Role.EMPLOYER, company)[1])
    stranger = await client.get(path, headers=mint_token(Role.CANDIDATE)[1])
    other_company = await client.get(path, headers=mint_token(Role.EMPLOYER, str(uuid.uuid4()))[1])

    assert mine.status_code == 200, mine.text
    assert [step["stage"] for step in mine.json()["history"]] == ["reviewed", "interview"]
    assert (mine.json()["stage"], mine.json()["company_id"]) == ("interview", company)
    assert employer.status_code == 200 and employer.json() == mine.json()
    assert stranger.status_code == other_company.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwieSJd"}, "cursor"),  # ["x","y"]
        ({"status": "pending"}, "status"),
        ({"status": ["open", "closed"]}, "status"),
        ({"page": "2"}, "page"),
        ({"limit": "51"}, "limit"),
    ],
)
async def test_a_bad_list_parameter_is_a_422_naming_it(gateway_factory, mint_token, params, field):
    client = await gateway_factory()
    response = await client.get("/v1/me/jobs", params=params, headers=mint_token(Role.EMPLOYER, str(uuid.uuid4()))[1])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
