"""Invitations: an employer brings a colleague into its company, an admin brings in analysts and employers; each
invitation's token is shown once, stored hashed, and used up by the one registration it allows."""

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.http.principal import Role

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
LISTED_FIELDS = {"invitation_id", "email", "role", "company_id", "invited_by", "created_at", "expires_at"}


def _email(tag: str = "invitee") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    return error


async def _employer(client) -> tuple[str, dict[str, str]]:
    """A registered employer of a new company: (company_id, auth headers)."""
    registered = await client.post(
        "/v1/auth/register",
        json={"email": _email("employer"), "password": PASSWORD, "display_name": "Ann", "role": "employer"},
    )
    assert registered.status_code == 201, registered.text
    return registered.json()["user"]["company_id"], _bearer(registered.json()["access_token"])


async def _invite(client, company_id: str, headers: dict[str, str], email: str | None = None) -> dict:
    invited = await client.post(
        f"/v1/companies/{company_id}/invitations",
        json={"email": email or _email(), "role": "employer"},
        headers=headers,
    )
    assert invited.status_code == 201, invited.text
    return invited.json()


async def _register(client, invitation: dict, **overrides):
    body = {
        "email": invitation["email"],
        "password": PASSWORD,
        "display_name": "Colleague",
        "invite_token": invitation["invite_token"],
        **overrides,
    }
    return await client.post("/v1/auth/register", json=body)


async def test_an_invited_colleague_joins_the_inviters_company_and_reads_its_jobs(gateway_factory, read_models, mysql):
    client = await gateway_factory()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)
    assert set(invitation) == LISTED_FIELDS | {"invite_token"}
    assert (invitation["role"], invitation["company_id"]) == ("employer", company_id)
    expires_at = datetime.fromisoformat(invitation["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    job_id = read_models.job(company_id, 1)

    registered = await _register(client, invitation)
    assert registered.status_code == 201, registered.text
    colleague = registered.json()["user"]
    assert (colleague["role"], colleague["company_id"]) == ("employer", company_id)
    jobs = await client.get("/v1/me/jobs", headers=_bearer(registered.json()["access_token"]))
    assert jobs.status_code == 200, jobs.text
    assert [job["job_id"] for job in jobs.json()["items"]] == [job_id]

    with mysql.cursor() as cursor:
        cursor.execute(
            "SELECT token_hash, accepted_by FROM invitations WHERE invitation_id = %s", (invitation["invitation_id"],)
        )
        token_hash, accepted_by = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM outbox WHERE message_key = %s", (colleague["user_id"].encode(),))
        assert cursor.fetchone() == (1,)
    assert bytes(token_hash) == hashlib.sha256(invitation["invite_token"].encode()).digest()
    assert accepted_by == colleague["user_id"]


async def test_an_invitation_registers_one_account_only(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)
    assert (await _register(client, invitation)).status_code == 201

    again = _error(await _register(client, invitation, display_name="Someone else"), 409)
    assert (again["code"], again["field"]) == ("invitation_used", "invite_token")


async def test_two_registrations_racing_on_one_invitation_create_one_account(accounts_client, mysql):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)

    first, second = await asyncio.gather(_register(client, invitation), _register(client, invitation))
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    with mysql.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM users WHERE email = %s", (invitation["email"],))
        assert cursor.fetchone() == (1,)


async def test_an_expired_invitation_is_refused_with_410(accounts_client):
    client = await accounts_client(invitation_ttl_s=0)
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)

    refused = _error(await _register(client, invitation), 410)
    assert (refused["code"], refused["field"]) == ("invitation_expired", "invite_token")


async def test_a_registration_with_another_email_is_refused_and_the_invitation_still_works(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)

    refused = _error(await _register(client, invitation, email=_email("intruder")), 422)
    assert (refused["code"], refused["field"]) == ("invitation_email_mismatch", "email")
    assert invitation["email"] not in refused["message"]
    assert (await _register(client, invitation, email=invitation["email"].upper())).status_code == 201


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"role": "candidate"}, "role", "invitation_role_mismatch"),
        ({"role": "analyst"}, "role", "invitation_role_mismatch"),
        ({"company_id": str(uuid.uuid4())}, "company_id", "invitation_company_mismatch"),
        ({"role": "admin"}, "role", "invalid_field"),
    ],
)
async def test_a_registration_contradicting_its_invitation_is_refused(accounts_client, change, field, code):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)

    refused = _error(await _register(client, invitation, **change), 422)
    assert (refused["field"], refused["code"]) == (field, code)


async def test_a_registration_repeating_its_invitations_role_and_company_is_accepted(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)

    registered = await _register(client, invitation, role="employer", company_id=company_id)
    assert registered.status_code == 201, registered.text
    assert registered.json()["user"]["company_id"] == company_id


async def test_an_unknown_invite_token_is_refused(accounts_client):
    client = await accounts_client()
    refused = _error(await _register(client, {"email": _email(), "invite_token": "not-a-token"}), 422)
    assert (refused["code"], refused["field"]) == ("invitation_unknown", "invite_token")


async def test_an_employer_of_another_company_gets_403_on_every_invitation_route(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)
    _, other = await _employer(client)

    path = f"/v1/companies/{company_id}/invitations"
    attempts = [
        await client.post(path, json={"email": _email()}, headers=other),
        await client.get(path, headers=other),
        await client.delete(f"{path}/{invitation['invitation_id']}", headers=other),
    ]
    for attempt in attempts:
        assert _error(attempt, 403)["code"] == "forbidden"
    assert (await _register(client, invitation)).status_code == 201


async def test_candidates_and_anonymous_callers_cannot_invite(accounts_client, mint_token):
    client = await accounts_client()
    company_id, _ = await _employer(client)
    _, candidate = mint_token(Role.CANDIDATE)
    path = f"/v1/companies/{company_id}/invitations"

    assert _error(await client.post(path, json={"email": _email()}, headers=candidate), 403)["code"] == "forbidden"
    assert _error(await client.post(path, json={"email": _email()}), 401)["code"] == "unauthenticated"
    admin_only = await client.post("/v1/invitations", json={"email": _email(), "role": "analyst"}, headers=candidate)
    assert _error(admin_only, 403)["code"] == "forbidden"


async def test_an_admin_invites_an_analyst_who_registers_and_reads_analytics(gateway_factory, mint_token):
    client = await gateway_factory()
    admin_id, admin = mint_token(Role.ADMIN)
    invited = await client.post("/v1/invitations", json={"email": _email("analyst"), "role": "analyst"}, headers=admin)
    assert invited.status_code == 201, invited.text
    invitation = invited.json()
    assert (invitation["role"], invitation["company_id"], invitation["invited_by"]) == ("analyst", None, admin_id)

    registered = await _register(client, invitation)
    assert registered.status_code == 201, registered.text
    assert (registered.json()["user"]["role"], registered.json()["user"]["company_id"]) == ("analyst", None)
    rejections = await client.get("/v1/analytics/rejections", headers=_bearer(registered.json()["access_token"]))
    assert rejections.status_code == 200, rejections.text


async def test_an_admin_invites_employers_to_an_existing_or_a_new_company_only(accounts_client, mint_token):
    client = await accounts_client()
    _, admin = mint_token(Role.ADMIN)
    company_id, _ = await _employer(client)

    def invite(**body):
        return client.post("/v1/invitations", json={"email": _email(), "role": "employer", **body}, headers=admin)

    existing = await invite(company_id=company_id)
    assert existing.status_code == 201, existing.text
    assert existing.json()["company_id"] == company_id
    new = await invite()
    assert new.status_code == 201, new.text
    assert new.json()["company_id"] not in (None, company_id)
    registered = await _register(client, new.json())
    assert registered.json()["user"]["company_id"] == new.json()["company_id"]

    unknown = _error(await invite(company_id=str(uuid.uuid4())), 404)
    assert (unknown["code"], unknown["field"]) == ("company_not_found", "company_id")
    analyst = _error(await invite(role="analyst", company_id=company_id), 422)
    assert analyst["field"] == "company_id"
    listed = await client.get(f"/v1/companies/{company_id}/invitations", headers=admin)
    assert [item["invitation_id"] for item in listed.json()["items"]] == [existing.json()["invitation_id"]]
    assert _error(await client.get(f"/v1/companies/{uuid.uuid4()}/invitations", headers=admin), 404)["code"] == (
        "company_not_found"
    )


async def test_a_revoked_invitation_is_refused_and_leaves_the_list(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)
    path = f"/v1/companies/{company_id}/invitations"

    assert (await client.delete(f"{path}/{invitation['invitation_id']}", headers=headers)).status_code == 204
    assert (await client.delete(f"{path}/{invitation['invitation_id']}", headers=headers)).status_code == 204
    refused = _error(await _register(client, invitation), 410)
    assert (refused["code"], refused["field"]) == ("invitation_revoked", "invite_token")
    assert (await client.get(path, headers=headers)).json()["items"] == []
    assert _error(await client.delete(f"{path}/{uuid.uuid4()}", headers=headers), 404)["field"] == "invitation_id"


async def test_a_used_invitation_cannot_be_revoked(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    invitation = await _invite(client, company_id, headers)
    assert (await _register(client, invitation)).status_code == 201

    revoked = await client.delete(
        f"/v1/companies/{company_id}/invitations/{invitation['invitation_id']}", headers=headers
    )
    assert _error(revoked, 409)["code"] == "invitation_used"


async def test_the_list_shows_only_pending_invitations_newest_first_without_tokens(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    used, older, newer = [await _invite(client, company_id, headers) for _ in range(3)]
    assert (await _register(client, used)).status_code == 201

    listed = await client.get(f"/v1/companies/{company_id}/invitations", headers=headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [item["invitation_id"] for item in items] == [newer["invitation_id"], older["invitation_id"]]
    assert all(set(item) == LISTED_FIELDS for item in items)
    assert not any(invitation["invite_token"] in listed.text for invitation in (used, older, newer))
    page = await client.get(
        f"/v1/companies/{company_id}/invitations", params={"limit": 1, "offset": 1}, headers=headers
    )
    assert [item["invitation_id"] for item in page.json()["items"]] == [older["invitation_id"]]


async def test_invitations_are_rate_limited_per_inviter(accounts_client):
    client = await accounts_client(invite_burst=2)
    company_id, headers = await _employer(client)
    other_company, other = await _employer(client)
    for _ in range(2):
        await _invite(client, company_id, headers)

    limited = await client.post(f"/v1/companies/{company_id}/invitations", json={"email": _email()}, headers=headers)
    assert _error(limited, 429)["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    await _invite(client, other_company, other)


async def test_an_email_with_an_account_cannot_be_invited(accounts_client):
    client = await accounts_client()
    company_id, headers = await _employer(client)
    member = await _invite(client, company_id, headers)
    assert (await _register(client, member)).status_code == 201

    taken = await client.post(
        f"/v1/companies/{company_id}/invitations", json={"email": member["email"]}, headers=headers
    )
    assert (_error(taken, 409)["code"], _error(taken, 409)["field"]) == ("email_taken", "email")


ODD_VALUES = [None, True, 0, -1, 1e308, "", "\x00", "\ud800", "é" * 300, [], {}, "x" * 20_000]


async def test_odd_values_and_paths_on_the_invitation_routes_get_a_4xx_never_a_5xx(accounts_client, mint_token):
    client = await accounts_client()
    company_id, employer = await _employer(client)
    _, admin = mint_token(Role.ADMIN)
    routes = [
        (f"/v1/companies/{company_id}/invitations", employer, {"email": _email(), "role": "employer"}),
        ("/v1/invitations", admin, {"email": _email(), "role": "employer", "company_id": company_id}),
    ]
    for path, headers, valid in routes:
        for field in valid:
            for value in ODD_VALUES:
                content = json.dumps({**valid, field: value}).encode()
                response = await client.post(
                    path, content=content, headers={**headers, "content-type": "application/json"}
                )
                assert 400 <= response.status_code < 500, (path, field, value, response.text)
    for path in ("/v1/companies/not-a-uuid/invitations", f"/v1/companies/{company_id.upper()}/invitations"):
        for method in ("GET", "POST"):
            response = await client.request(method, path, json={"email": _email()}, headers=admin)
            assert _error(response, 422)["field"] == "company_id"
    bad_id = await client.delete(f"/v1/companies/{company_id}/invitations/nope", headers=employer)
    assert _error(bad_id, 422)["field"] == "invitation_id"
