import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pymysql
import pytest

from gateway.clients.readmodels import ANALYTICS_SQL
from gateway.http.principal import Role
from state.migrate import connect

pytestmark = pytest.mark.anyio

MINUTE = timedelta(minutes=1)


@pytest.fixture
def t0() -> datetime:
    """A minute of its own, decades ahead, so ranges read platform-wide meet no other test's rows (UTC, naive)."""
    return datetime(2040, 1, 1) + timedelta(minutes=random.randrange(20 * 365 * 24 * 60))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


@pytest.fixture
def stats(mysql):
    """Inserts read-model rows as the sinks would (unique ids); deletes exactly those rows afterwards."""
    inserted: list[tuple[str, str, str]] = []

    class Stats:
        def job(self, company_id: str) -> str:
            job_id = str(uuid.uuid4())
            now = datetime.now(UTC).replace(tzinfo=None)
            self._insert(
                "jobs",
                {
                    "job_id": job_id,
                    "company_id": company_id,
                    "title": "Analytics job",
                    "description": "Counted, not read.",
                    "location": "Porto",
                    "status": "open",
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                },
            )
            inserted.append(("jobs", "job_id", job_id))
            return job_id

        def job_window(self, job_id: str, company_id: str | None, start: datetime, **counts) -> dict:
            row = self._window(start, timedelta(minutes=1), counts)
            self._insert("job_window_stats", {"job_id": job_id, "company_id": company_id, **row})
            inserted.append(("job_window_stats", "job_id", job_id))
            return row

        def company_window(self, company_id: str, start: datetime, **counts) -> dict:
            row = self._window(start, timedelta(hours=1), counts)
            self._insert("company_window_stats", {"company_id": company_id, **row})
            inserted.append(("company_window_stats", "company_id", company_id))
            return row

        def funnel(self, job_id: str, **counts: int) -> None:
            self._insert("job_funnel", {"job_id": job_id, **counts})
            inserted.append(("job_funnel", "job_id", job_id))

        def _window(self, start: datetime, length: timedelta, counts: dict) -> dict:
            reasons = counts.get("rejected_by_reason", {})
            accepted = counts.get("accepted", 0)
            views = counts.get("views", 0)
            applications = accepted + sum(reasons.values())
            return {
                "window_start": start,
                "window_end": start + length,
                "applications": applications,
                "accepted": accepted,
                "rejected": sum(reasons.values()),
                "rejected_by_reason": json.dumps(reasons, sort_keys=True),
                "views": views,
                "conversion": applications / views if views else None,
                "version": 1,
            }

        def _insert(self, table: str, row: dict) -> None:
            with mysql.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                    list(row.values()),
                )

    yield Stats()
    with mysql.cursor() as cursor:
        for table, column, value in set(inserted):
            cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", (value,))


def expected(row: dict) -> dict:
    """A window row as the API answers it."""
    return {
        "window_start": iso(row["window_start"]),
        "window_end": iso(row["window_end"]),
        "applications": row["applications"],
        "accepted": row["accepted"],
        "rejected": row["rejected"],
        "rejected_by_reason": json.loads(row["rejected_by_reason"]),
        "views": row["views"],
        "conversion": row["conversion"],
    }


async def test_job_windows_come_in_time_order_within_the_range_and_page_by_next_since(
    gateway_factory, gateway_metrics, mint_token, stats, t0
):
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    _, analyst = mint_token(Role.ANALYST)
    job_id = stats.job(company_id)
    other_job = stats.job(company_id)
    stats.job_window(job_id, company_id, t0 - MINUTE, accepted=9)
    later = stats.job_window(job_id, company_id, t0 + 5 * MINUTE, accepted=1, views=4)
    first = stats.job_window(job_id, company_id, t0, accepted=2, rejected_by_reason={"job_full": 1}, views=6)
    second = stats.job_window(job_id, company_id, t0 + MINUTE, rejected_by_reason={"job_closed": 2, "job_full": 1})
    stats.job_window(job_id, company_id, t0 + 10 * MINUTE, accepted=7)
    stats.job_window(other_job, company_id, t0, accepted=5)
    span = {"since": iso(t0), "until": iso(t0 + 10 * MINUTE)}

    response = await client.get(f"/v1/analytics/jobs/{job_id}/windows", params=span, headers=analyst)
    again = await client.get(f"/v1/analytics/jobs/{job_id}/windows", params=span, headers=analyst)
    metrics = gateway_metrics(client)
    page1 = await client.get(f"/v1/analytics/jobs/{job_id}/windows", params={**span, "limit": 2}, headers=analyst)
    page2_since = page1.json()["next_since"]
    page2 = await client.get(
        f"/v1/analytics/jobs/{job_id}/windows", params={**span, "since": page2_since, "limit": 2}, headers=analyst
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["items"] == [expected(first), expected(second), expected(later)]
    assert (body["job_id"], body["since"], body["until"], body["limit"], body["next_since"]) == (
        job_id,
        span["since"],
        span["until"],
        100,
        None,
    )
    assert again.json() == body
    assert page1.json()["items"] == [expected(first), expected(second)]
    assert page2_since == iso(t0 + MINUTE + timedelta(milliseconds=1))
    assert page2.json()["items"] == [expected(later)] and page2.json()["next_since"] is None
    # The repeat was served from the cache: the job's owner and its windows.
    assert 'gateway_cache_lookups_total{cache="analytics",result="hit"} 2.0' in metrics


async def test_company_windows_are_the_companys_hopping_windows_in_time_order(gateway_factory, mint_token, stats, t0):
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    _, analyst = mint_token(Role.ANALYST)
    hop = timedelta(minutes=5)
    rows = [
        stats.company_window(company_id, t0 + n * hop, accepted=n, rejected_by_reason={"past_deadline": 1}, views=10)
        for n in (2, 0, 1)
    ]
    stats.company_window(company_id, t0 + 3 * hop, accepted=3)
    stats.company_window(str(uuid.uuid4()), t0, accepted=8)

    response = await client.get(
        f"/v1/analytics/companies/{company_id}/windows",
        params={"since": iso(t0), "until": iso(t0 + 3 * hop)},
        headers=analyst,
    )

    assert response.status_code == 200, response.text
    assert response.json()["items"] == [expected(rows[1]), expected(rows[2]), expected(rows[0])]
    assert response.json()["company_id"] == company_id


async def test_the_funnel_counts_views_applications_accepted_and_each_stage(gateway_factory, mint_token, stats, t0):
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    _, analyst = mint_token(Role.ANALYST)
    job_id = stats.job(company_id)
    stats.funnel(job_id, applications=8, accepted=5, rejected=3, reviewed=4, interview=2, offer=1, hired=1)
    stats.job_window(job_id, company_id, t0, views=30)
    stats.job_window(job_id, company_id, t0 + MINUTE, views=10, accepted=1)
    no_funnel_yet = stats.job(company_id)

    response = await client.get(f"/v1/analytics/jobs/{job_id}/funnel", headers=analyst)
    empty = await client.get(f"/v1/analytics/jobs/{no_funnel_yet}/funnel", headers=analyst)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "job_id": job_id,
        "company_id": company_id,
        "views": 40,
        "applications": 8,
        "accepted": 5,
        "rejected": 3,
        "stages": {"reviewed": 4, "interview": 2, "offer": 1, "hired": 1, "declined": 0},
        "conversion": {"view_to_application": 0.2, "application_to_accepted": 0.625},
    }
    assert empty.json()["views"] == 0 and empty.json()["applications"] == 0
    assert empty.json()["conversion"] == {"view_to_application": None, "application_to_accepted": None}


async def test_rejections_sum_each_reason_across_jobs_in_the_range(gateway_factory, mint_token, stats, t0):
    client = await gateway_factory()
    mine, rival = str(uuid.uuid4()), str(uuid.uuid4())
    _, analyst = mint_token(Role.ANALYST)
    _, employer = mint_token(Role.EMPLOYER, mine)
    job_a, job_b, job_c = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    stats.job_window(job_a, mine, t0, accepted=3, rejected_by_reason={"job_full": 2, "job_closed": 1})
    stats.job_window(job_a, mine, t0 + MINUTE, rejected_by_reason={"job_full": 4})
    stats.job_window(job_b, rival, t0, rejected_by_reason={"past_deadline": 3, "job_full": 1})
    stats.job_window(job_c, None, t0 + 2 * MINUTE, rejected_by_reason={"job_unknown": 2}, views=5)
    stats.job_window(job_b, rival, t0 + 3 * MINUTE, rejected_by_reason={"job_full": 50})  # at `until`: outside
    stats.job_window(job_a, mine, t0 - MINUTE, rejected_by_reason={"job_full": 50})  # before `since`: outside
    span = {"since": iso(t0), "until": iso(t0 + 3 * MINUTE)}

    everything = await client.get("/v1/analytics/rejections", params=span, headers=analyst)
    one_company = await client.get("/v1/analytics/rejections", params={**span, "company_id": rival}, headers=analyst)
    own = await client.get("/v1/analytics/rejections", params=span, headers=employer)
    own_named = await client.get("/v1/analytics/rejections", params={**span, "company_id": mine}, headers=employer)
    other = await client.get("/v1/analytics/rejections", params={**span, "company_id": rival}, headers=employer)

    assert everything.status_code == 200, everything.text
    assert everything.json() == {
        "company_id": None,
        "since": span["since"],
        "until": span["until"],
        "rejected": 13,
        "by_reason": [
            {"reason": "job_full", "rejected": 7},
            {"reason": "past_deadline", "rejected": 3},
            {"reason": "job_unknown", "rejected": 2},
            {"reason": "job_closed", "rejected": 1},
        ],
    }
    assert one_company.json()["by_reason"] == [
        {"reason": "past_deadline", "rejected": 3},
        {"reason": "job_full", "rejected": 1},
    ]
    assert own.json()["company_id"] == mine and own.json()["rejected"] == 7
    assert own.json()["by_reason"] == [{"reason": "job_full", "rejected": 6}, {"reason": "job_closed", "rejected": 1}]
    assert own_named.json() == own.json()
    assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("endpoint", ["job_windows", "company_windows", "funnel"])
async def test_analysts_admins_and_the_companys_own_employers_may_read_others_may_not(
    gateway_factory, mint_token, stats, t0, endpoint
):
    client = await gateway_factory()
    company_id = str(uuid.uuid4())
    job_id = stats.job(company_id)
    stats.job_window(job_id, company_id, t0, accepted=1)
    stats.company_window(company_id, t0, accepted=1)
    path = {
        "job_windows": f"/v1/analytics/jobs/{job_id}/windows",
        "company_windows": f"/v1/analytics/companies/{company_id}/windows",
        "funnel": f"/v1/analytics/jobs/{job_id}/funnel",
    }[endpoint]
    params = {} if endpoint == "funnel" else {"since": iso(t0), "until": iso(t0 + MINUTE)}
    callers = {
        "analyst": mint_token(Role.ANALYST)[1],
        "admin": mint_token(Role.ADMIN)[1],
        "own employer": mint_token(Role.EMPLOYER, company_id)[1],
        "rival employer": mint_token(Role.EMPLOYER, str(uuid.uuid4()))[1],
        "employer without company": mint_token(Role.EMPLOYER)[1],
        "candidate": mint_token(Role.CANDIDATE)[1],
        "anonymous": {},
    }

    statuses = {who: (await client.get(path, params=params, headers=h)).status_code for who, h in callers.items()}

    assert statuses == {
        "analyst": 200,
        "admin": 200,
        "own employer": 200,
        "rival employer": 403,
        "employer without company": 403,
        "candidate": 403,
        "anonymous": 401,
    }


async def test_rejections_refuse_candidates_and_anonymous_callers(gateway_factory, mint_token):
    client = await gateway_factory()
    _, candidate = mint_token(Role.CANDIDATE)

    as_candidate = await client.get("/v1/analytics/rejections", headers=candidate)
    anonymous = await client.get("/v1/analytics/rejections")

    assert (as_candidate.status_code, as_candidate.json()["error"]["code"]) == (403, "forbidden")
    assert anonymous.status_code == 401


async def test_an_unknown_job_is_404_and_a_job_without_a_known_company_is_for_analysts_only(
    gateway_factory, mint_token, stats, t0
):
    client = await gateway_factory()
    _, analyst = mint_token(Role.ANALYST)
    _, employer = mint_token(Role.EMPLOYER, str(uuid.uuid4()))
    orphan = str(uuid.uuid4())
    stats.job_window(orphan, None, t0, views=3)

    unknown = await client.get(f"/v1/analytics/jobs/{uuid.uuid4()}/funnel", headers=analyst)
    orphan_for_analyst = await client.get(f"/v1/analytics/jobs/{orphan}/funnel", headers=analyst)
    orphan_for_employer = await client.get(f"/v1/analytics/jobs/{orphan}/funnel", headers=employer)

    assert (unknown.status_code, unknown.json()["error"]["field"]) == (404, "job_id")
    assert orphan_for_analyst.status_code == 200 and orphan_for_analyst.json()["views"] == 3
    assert orphan_for_analyst.json()["company_id"] is None
    assert orphan_for_employer.status_code == 403


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/analytics/rejections", {"since": "yesterday"}, "since"),
        ("/v1/analytics/rejections", {"until": "2026-13-01T00:00:00Z"}, "until"),
        ("/v1/analytics/rejections", {"since": "2026-11-01T00:00:00"}, "since"),
        ("/v1/analytics/rejections", {"since": "2026-11-01T00:00:00 01:00"}, "since"),
        ("/v1/analytics/rejections", {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "since"),
        ("/v1/analytics/rejections", {"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since"),
        ("/v1/analytics/rejections", {"since": ["2026-11-01T00:00:00Z", "2026-11-01T01:00:00Z"]}, "since"),
        ("/v1/analytics/rejections", {"until": "0001-01-01T00:00:00+14:00"}, "until"),
        ("/v1/analytics/rejections", {"since": "9999-12-31T23:59:59-01:00"}, "since"),
        ("/v1/analytics/rejections", {"company_id": "acme"}, "company_id"),
        ("/v1/analytics/rejections", {"order": "desc"}, "order"),
        ("/v1/analytics/jobs/not-a-uuid/windows", {}, "job_id"),
        ("/v1/analytics/jobs/{job}/windows", {"limit": "0"}, "limit"),
        ("/v1/analytics/jobs/{job}/windows", {"limit": "501"}, "limit"),
        ("/v1/analytics/jobs/{job}/windows", {"limit": "\u00b2"}, "limit"),
        (
            "/v1/analytics/jobs/{job}/windows",
            {"since": "2026-11-01T00:00:00Z", "until": "2026-11-09T00:00:00Z"},
            "since",
        ),
        ("/v1/analytics/companies/{job}/windows", {"until": "0001-01-01T00:00:00Z"}, "until"),
        ("/v1/analytics/companies/ACME/windows", {}, "company_id"),
        ("/v1/analytics/jobs/{job}/funnel", {"since": "2026-11-01T00:00:00Z"}, "since"),
    ],
)
async def test_each_bad_parameter_gets_a_422_naming_it(gateway_factory, mint_token, stats, path, params, field):
    client = await gateway_factory()
    _, analyst = mint_token(Role.ANALYST)
    job_id = stats.job(str(uuid.uuid4()))

    response = await client.get(path.format(job=job_id), params=params, headers=analyst)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_explain_shows_each_analytics_read_served_by_an_index(settings, scratch_database):
    """On a filled, analyzed copy of the read models: every analytics read walks an index, none scans a table."""
    t0 = datetime(2026, 11, 1)
    jobs = [(str(uuid.UUID(int=n)), str(uuid.UUID(int=10_000 + n % 40))) for n in range(200)]
    reasons = json.dumps({"job_full": 1, "job_closed": 2})
    with connect(settings.mysql, scratch_database) as connection, connection.cursor(pymysql.cursors.DictCursor) as cur:
        cur.executemany(
            "INSERT INTO jobs (job_id, company_id, title, description, location, status, created_at, updated_at,"
            " version) VALUES (%s, %s, 'x', 'y', 'Porto', 'open', '2026-11-01', '2026-11-01', 0)",
            jobs,
        )
        cur.executemany("INSERT INTO job_funnel (job_id, applications) VALUES (%s, 3)", [(job,) for job, _ in jobs])
        cur.executemany(
            "INSERT INTO job_window_stats (job_id, company_id, window_start, window_end, applications, accepted,"
            " rejected, rejected_by_reason, views, version) VALUES (%s, %s, %s, %s, 3, 0, %s, %s, 4, 0)",
            [
                (job, company, t0 + m * MINUTE, t0 + (m + 1) * MINUTE, 3 if m % 4 == 0 else 0, reasons)
                for job, company in jobs
                for m in range(120)
            ],
        )
        cur.executemany(
            "INSERT INTO company_window_stats (company_id, window_start, window_end, applications, accepted, rejected,"
            " rejected_by_reason, views, version) VALUES (%s, %s, %s, 1, 0, 0, '{}', 0, 0)",
            [
                (str(uuid.UUID(int=10_000 + c)), t0 + w * 5 * MINUTE, t0 + (w * 5 + 60) * MINUTE)
                for c in range(40)
                for w in range(100)
            ],
        )
        for table in ("jobs", "job_funnel", "job_window_stats", "company_window_stats"):
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()
        params = {
            "job_id": jobs[7][0],
            "company_id": jobs[7][1],
            "since": t0 + 30 * MINUTE,
            "until": t0 + 40 * MINUTE,
            "limit": 100,
        }
        plans = {}
        for name, sql in ANALYTICS_SQL.items():
            cur.execute("EXPLAIN " + sql, params)
            plans[name] = cur.fetchall()

    chosen = {name: {(row["table"], row["key"]) for row in plan if row["table"]} for name, plan in plans.items()}
    assert chosen["job_windows"] == {("job_window_stats", "PRIMARY")}, plans["job_windows"]
    assert chosen["company_windows"] == {("company_window_stats", "PRIMARY")}, plans["company_windows"]
    assert chosen["job_funnel"] == {("job_funnel", "PRIMARY")}, plans["job_funnel"]
    assert chosen["job_views"] == {("job_window_stats", "PRIMARY")}, plans["job_views"]
    assert ("w", "job_window_time") in chosen["rejections"], plans["rejections"]
    assert ("w", "job_window_company") in chosen["company_rejections"], plans["company_rejections"]
    assert {table for table, _ in chosen["job_owner"]} == {"jobs", "job_window_stats", "job_funnel"}
    assert all(key == "PRIMARY" for _, key in chosen["job_owner"]), plans["job_owner"]


async def test_the_range_defaults_to_the_recent_past_and_may_span_exactly_the_maximum(
    gateway_factory, mint_token, stats
):
    client = await gateway_factory()
    _, analyst = mint_token(Role.ANALYST)
    job_id = stats.job(str(uuid.uuid4()))

    defaults = await client.get(f"/v1/analytics/jobs/{job_id}/windows", headers=analyst)
    widest = await client.get(
        f"/v1/analytics/jobs/{job_id}/windows",
        params={"since": "2026-11-01T00:00:00+01:00", "until": "2026-11-07T23:00:00Z"},
        headers=analyst,
    )

    assert defaults.status_code == 200, defaults.text
    since, until = (datetime.fromisoformat(defaults.json()[k]) for k in ("since", "until"))
    assert until - since == timedelta(hours=1) and until.second == 0
    assert abs(until - datetime.now(UTC)) <= timedelta(minutes=1)
    assert widest.status_code == 200, widest.text
    assert widest.json()["since"] == "2026-10-31T23:00:00.000Z" and widest.json()["items"] == []
