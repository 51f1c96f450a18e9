import base64
import json
import time
import uuid

import pytest

from gateway.accounts.keys import load_signing_keys
from gateway.accounts.store import EMAIL_COLLATION
from gateway.accounts.tokens import TokenService
from gateway.http.principal import Role
from schemas import load_event_schemas

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


def _email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


async def _register(client, **overrides):
    body = {"email": _email(), "password": PASSWORD, "display_name": "Ada Lovelace", **overrides}
    response = await client.post("/v1/auth/register", json=body)
    return response, body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    return error


def _user_row(mysql, user_id: str) -> dict:
    with mysql.cursor() as cursor:
        cursor.execute(
            "SELECT email, password_hash, role, company_id, display_name FROM users WHERE user_id = %s", (user_id,)
        )
        email, password_hash, role, company_id, display_name = cursor.fetchone()
    return {"email": email, "hash": password_hash, "role": role, "company_id": company_id, "name": display_name}


async def test_a_registered_candidate_gets_tokens_a_profile_and_can_log_in(accounts_client, mysql):
    client = await accounts_client()
    registered, body = await _register(client, email=_email("Mixed.Case").upper())
    assert registered.status_code == 201, registered.text
    session = registered.json()
    user = session["user"]
    assert user["email"] == body["email"].lower()
    assert (user["role"], user["company_id"], user["display_name"]) == ("candidate", None, "Ada Lovelace")
    assert session["token_type"] == "Bearer"
    assert (session["expires_in"], session["refresh_expires_in"]) == (15 * 60, 14 * 24 * 3600)

    row = _user_row(mysql, user["user_id"])
    assert row["hash"].startswith("$argon2id$") and PASSWORD not in row["hash"]

    login = await client.post("/v1/auth/login", json={"email": body["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["user"] == user
    me = await client.get("/v1/me", headers=_bearer(login.json()["access_token"]))
    assert me.status_code == 200
    assert me.json() == user


async def test_an_employer_registration_creates_a_new_company(accounts_client):
    client = await accounts_client()
    first, _ = await _register(client, role="employer")
    second, _ = await _register(client, role="employer")
    companies = [r.json()["user"]["company_id"] for r in (first, second)]
    assert all(uuid.UUID(company) for company in companies)
    assert companies[0] != companies[1]
    token = first.json()["access_token"]
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert (payload["role"], payload["company_id"]) == ("employer", companies[0])


async def test_the_profile_is_cached_and_an_update_writes_mysql_then_the_cache(accounts_client, mysql, async_redis):
    client = await accounts_client()
    registered, _ = await _register(client)
    user_id, token = registered.json()["user"]["user_id"], registered.json()["access_token"]
    key = f"jobstream:cache:profiles:{user_id}"
    assert json.loads(await async_redis.get(key))["display_name"] == "Ada Lovelace"
    assert 0 < await async_redis.ttl(key) <= 30 * 60

    updated = await client.patch("/v1/me", headers=_bearer(token), json={"display_name": "  Countess of Lovelace "})
    assert updated.status_code == 200, updated.text
    assert updated.json()["display_name"] == "Countess of Lovelace"
    assert _user_row(mysql, user_id)["name"] == "Countess of Lovelace"
    assert json.loads(await async_redis.get(key)) == updated.json()

    # A read served from the cache: what the cache holds is what the API answers.
    await async_redis.set(key, json.dumps({**updated.json(), "display_name": "from the cache"}), ex=60)
    assert (await client.get("/v1/me", headers=_bearer(token))).json()["display_name"] == "from the cache"
    await async_redis.delete(key)
    reloaded = await client.get("/v1/me", headers=_bearer(token))
    assert reloaded.json() == updated.json()
    assert json.loads(await async_redis.get(key)) == updated.json()


async def test_a_taken_email_is_refused_in_any_case_without_an_outbox_event(accounts_client, mysql):
    client = await accounts_client()
    _, body = await _register(client)
    with mysql.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM outbox")
        (outbox_rows,) = cursor.fetchone()
    again, _ = await _register(client, email=body["email"].upper(), display_name="Someone Else")
    error = _error(again, 409)
    assert (error["code"], error["field"]) == ("email_taken", "email")
    with mysql.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM outbox")
        assert cursor.fetchone() == (outbox_rows,)


async def test_a_display_name_change_writes_the_whole_account_to_the_outbox_again(accounts_client, mysql):
    client = await accounts_client()
    registered, body = await _register(client)
    user, token = registered.json()["user"], registered.json()["access_token"]
    updated = await client.patch("/v1/me", headers=_bearer(token), json={"display_name": "Countess of Lovelace"})
    assert updated.status_code == 200, updated.text
    with mysql.cursor() as cursor:
        cursor.execute(
            "SELECT topic, payload FROM outbox WHERE message_key = %s ORDER BY id", (user["user_id"].encode(),)
        )
        rows = cursor.fetchall()
    decode = load_event_schemas()["user_registered"].decode
    events = [decode(payload) for topic, payload in rows if topic == "user.registered"]
    assert [e["display_name"] for e in events] == ["Ada Lovelace", "Countess of Lovelace"]
    assert events[1]["email"] == body["email"] and events[1]["registered_at"] == events[0]["registered_at"]
    assert events[0]["event_id"] != events[1]["event_id"]


async def test_registration_writes_the_user_registered_event_to_the_outbox(accounts_client, mysql):
    client = await accounts_client()
    registered, body = await _register(client, role="employer")
    user = registered.json()["user"]
    with mysql.cursor() as cursor:
        cursor.execute("SELECT topic, payload, sent_at FROM outbox WHERE message_key = %s", (user["user_id"].encode(),))
        rows = cursor.fetchall()
    assert len(rows) == 1
    topic, payload, _ = rows[0]
    assert topic == "user.registered"
    event = load_event_schemas()["user_registered"].decode(payload)
    assert {k: event[k] for k in ("user_id", "email", "display_name", "role", "company_id")} == {
        "user_id": user["user_id"],
        "email": body["email"],
        "display_name": "Ada Lovelace",
        "role": "employer",
        "company_id": user["company_id"],
    }


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"email": None}, "email", "invalid_field"),
        ({"email": "not-an-email"}, "email", "invalid_field"),
        ({"email": "two@@example.com"}, "email", "invalid_field"),
        ({"email": "a b@example.com"}, "email", "invalid_field"),
        ({"email": "x" * 250 + "@example.com"}, "email", "invalid_field"),
        ({"password": "short"}, "password", "invalid_field"),
        ({"password": "p" * 129}, "password", "invalid_field"),
        ({"password": 123456789012}, "password", "invalid_field"),
        ({"display_name": "   "}, "display_name", "invalid_field"),
        ({"display_name": "n" * 101}, "display_name", "invalid_field"),
        ({"display_name": "bell\x07"}, "display_name", "invalid_field"),
        ({"display_name": "Ada\u2028Lovelace"}, "display_name", "invalid_field"),
        ({"display_name": "Ada\x85"}, "display_name", "invalid_field"),
        ({"role": "admin"}, "role", "invalid_field"),
        ({"role": "analyst"}, "role", "invalid_field"),
        ({"role": "superuser"}, "role", "invalid_field"),
        ({"company_id": str(uuid.uuid4())}, "company_id", "invalid_field"),
        ({"is_admin": True}, "is_admin", "unknown_field"),
        ({"invite_token": ""}, "invite_token", "invalid_field"),
        ({"invite_token": None}, "invite_token", "invalid_field"),
    ],
)
async def test_each_registration_error_names_its_field(accounts_client, change, field, code):
    client = await accounts_client()
    body = {"email": _email(), "password": PASSWORD, "display_name": "Ada", **change}
    error = _error(await client.post("/v1/auth/register", json=body), 422)
    assert (error["field"], error["code"]) == (field, code)


async def test_a_missing_field_and_a_malformed_body_are_named(accounts_client):
    client = await accounts_client()
    missing = await client.post("/v1/auth/register", json={"email": _email(), "display_name": "Ada"})
    assert (_error(missing, 422)["field"], _error(missing, 422)["code"]) == ("password", "missing_field")
    assert _error(await client.post("/v1/auth/login", content=b"{", headers={"content-type": "application/json"}), 400)
    assert _error(await client.post("/v1/auth/login", content=b"email=a"), 415)["field"] == "content-type"
    assert _error(await client.post("/v1/auth/refresh", json=["refresh_token"]), 422)["code"] == "invalid_body"


async def test_a_wrong_password_and_an_unknown_email_get_the_same_401(accounts_client):
    client = await accounts_client()
    _, body = await _register(client)
    wrong = await client.post("/v1/auth/login", json={"email": body["email"], "password": "wrong password!"})
    unknown = await client.post("/v1/auth/login", json={"email": _email(), "password": PASSWORD})
    assert _error(wrong, 401) == _error(unknown, 401)
    assert _error(wrong, 401)["code"] == "invalid_credentials"


async def test_login_attempts_are_limited_per_account(accounts_client):
    client = await accounts_client(login_max_attempts_per_account=3)
    _, body = await _register(client)
    for _ in range(3):
        wrong = await client.post("/v1/auth/login", json={"email": body["email"], "password": "wrong password!"})
        assert wrong.status_code == 401
    limited = await client.post("/v1/auth/login", json={"email": body["email"], "password": PASSWORD})
    assert _error(limited, 429)["code"] == "rate_limited"
    assert "this account" in limited.json()["error"]["message"]
    assert int(limited.headers["retry-after"]) >= 1
    other_client = await accounts_client(login_max_attempts_per_account=3)
    still_limited = await other_client.post("/v1/auth/login", json={"email": body["email"], "password": PASSWORD})
    assert still_limited.status_code == 429


def _spellings(email: str) -> list[str]:
    """Six ways to type `email` (which holds an é) that the account lookup reads as the same address."""
    return [
        email.upper(),
        email.replace("é", "e"),
        email.replace("é", "e\u0301"),  # decomposed: e + combining acute
        f"  {email.title()} ",
        email.replace("é", "\u200bé"),  # a zero-width space, which the collation ignores
        email.replace("j", "\uff4a"),  # a fullwidth j
    ]


@pytest.mark.parametrize("registered", [True, False], ids=["known-account", "unknown-email"])
async def test_login_attempts_for_spellings_of_one_email_share_its_budget(accounts_client, registered):
    client = await accounts_client()
    exact, spelled = _email("josé"), _email("josé")
    if registered:
        for email in (exact, spelled):
            assert (await _register(client, email=email))[0].status_code == 201

    async def statuses(emails):
        attempts = [
            await client.post("/v1/auth/login", json={"email": e, "password": "wrong password!"}) for e in emails
        ]
        return [a.status_code for a in attempts], attempts[-1]

    by_exact, _ = await statuses([exact] * 6)
    by_spellings, last = await statuses(_spellings(spelled))

    assert by_exact == [401] * 5 + [429]
    assert by_spellings == by_exact
    assert "for this account" in last.json()["error"]["message"]


async def test_the_login_key_follows_the_email_columns_collation(mysql):
    with mysql.cursor() as cursor:
        cursor.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'email'"
        )
        assert cursor.fetchone() == (EMAIL_COLLATION,)


async def test_login_attempts_are_limited_per_ip_across_accounts(accounts_client):
    client = await accounts_client(login_max_attempts_per_ip=3)
    for _ in range(3):
        attempt = await client.post("/v1/auth/login", json={"email": _email(), "password": PASSWORD})
        assert attempt.status_code == 401
    limited = await client.post("/v1/auth/login", json={"email": _email(), "password": PASSWORD})
    assert _error(limited, 429)["code"] == "rate_limited"
    assert "this address" in limited.json()["error"]["message"]


async def test_a_refresh_rotates_both_tokens_and_keeps_the_session(accounts_client):
    client = await accounts_client()
    registered, _ = await _register(client)
    first = registered.json()
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await client.get("/v1/me", headers=_bearer(second["access_token"]))).status_code == 200
    third = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_a_reused_refresh_token_revokes_its_whole_family(accounts_client):
    client = await accounts_client()
    registered, body = await _register(client)
    stolen = registered.json()["refresh_token"]
    newest = (await client.post("/v1/auth/refresh", json={"refresh_token": stolen})).json()

    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": stolen})
    error = _error(reuse, 401)
    assert (error["code"], error["field"]) == ("refresh_token_reused", "refresh_token")
    assert (
        _error(await client.post("/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]}), 401)["code"]
        == "refresh_token_revoked"
    )
    after = await client.get("/v1/me", headers=_bearer(newest["access_token"]))
    assert _error(after, 401)["code"] == "token_revoked"

    # Another session of the same user is not touched.
    other = await client.post("/v1/auth/login", json={"email": body["email"], "password": PASSWORD})
    assert (await client.get("/v1/me", headers=_bearer(other.json()["access_token"]))).status_code == 200


async def test_an_unknown_refresh_token_is_refused(accounts_client):
    client = await accounts_client()
    refused = await client.post("/v1/auth/refresh", json={"refresh_token": "made-up-token"})
    assert _error(refused, 401)["code"] == "invalid_refresh_token"


async def test_logout_revokes_the_access_token_and_the_refresh_family(accounts_client, async_redis):
    client = await accounts_client()
    registered, body = await _register(client)
    session = registered.json()
    other = (await client.post("/v1/auth/login", json={"email": body["email"], "password": PASSWORD})).json()

    assert (await client.post("/v1/auth/logout", headers=_bearer(session["access_token"]))).status_code == 204
    assert _error(await client.get("/v1/me", headers=_bearer(session["access_token"])), 401)["code"] == "token_revoked"
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert _error(refresh, 401)["code"] == "refresh_token_revoked"
    assert (await client.get("/v1/me", headers=_bearer(other["access_token"]))).status_code == 200


async def test_the_profile_and_logout_need_a_valid_access_token(settings, accounts_client, async_redis):
    client = await accounts_client()
    registered, _ = await _register(client)
    user = registered.json()["user"]
    assert _error(await client.get("/v1/me"), 401)["code"] == "unauthenticated"
    assert _error(await client.post("/v1/auth/logout"), 401)["code"] == "unauthenticated"
    keys = load_signing_keys(settings.accounts)
    hour_ago = TokenService(
        keys.private_key,
        keys.public_key,
        issuer="jobstream",
        access_ttl_s=60,
        redis=async_redis,
        clock=lambda: time.time() - 3600,
    )
    expired = hour_ago.issue(user["user_id"], Role.CANDIDATE, None, str(uuid.uuid4())).token
    assert _error(await client.get("/v1/me", headers=_bearer(expired)), 401)["code"] == "token_expired"
    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
    unsigned = f"{none_header}.{registered.json()['access_token'].split('.')[1]}."
    assert _error(await client.get("/v1/me", headers=_bearer(unsigned)), 401)["code"] == "invalid_token"


async def test_a_profile_update_refuses_fields_other_than_display_name(accounts_client):
    client = await accounts_client()
    registered, _ = await _register(client)
    token = registered.json()["access_token"]
    for body, field, code in [
        ({"role": "admin"}, "role", "unknown_field"),
        ({"company_id": str(uuid.uuid4())}, "company_id", "unknown_field"),
        ({"display_name": ""}, "display_name", "invalid_field"),
        ({}, None, "invalid_body"),
    ]:
        error = _error(await client.patch("/v1/me", headers=_bearer(token), json=body), 422)
        assert (error["field"], error["code"]) == (field, code)
    assert (await client.get("/v1/me", headers=_bearer(token))).json()["role"] == "candidate"


INJECTIONS = [
    "Robert'); DROP TABLE users;--",
    "' OR '1'='1",
    '" OR ""="',
    "1; SELECT SLEEP(5) -- \\",
]


async def test_sql_injection_strings_in_every_text_field_are_stored_as_text(accounts_client, mysql):
    client = await accounts_client()
    email = f"o'brien\";drop--{uuid.uuid4().hex[:8]}@example.com"
    for index, injection in enumerate(INJECTIONS):
        password = f"{injection} padding to twelve"
        registered, _ = await _register(
            client, email=email.replace("@", f"{index}@"), password=password, display_name=injection
        )
        assert registered.status_code == 201, registered.text
        user = registered.json()["user"]
        row = _user_row(mysql, user["user_id"])
        assert (row["email"], row["name"]) == (email.replace("@", f"{index}@"), injection)
        login = await client.post("/v1/auth/login", json={"email": row["email"], "password": password})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        renamed = await client.patch("/v1/me", headers=_bearer(token), json={"display_name": injection[::-1]})
        assert renamed.json()["display_name"] == injection[::-1].strip()
        refused = await client.post("/v1/auth/refresh", json={"refresh_token": injection})
        assert _error(refused, 401)["code"] == "invalid_refresh_token"
        unknown = await client.post("/v1/auth/login", json={"email": injection, "password": injection})
        assert _error(unknown, 401)["code"] == "invalid_credentials"
    with mysql.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM users WHERE email LIKE %s", (email.split("@")[0] + "%",))
        assert cursor.fetchone() == (len(INJECTIONS),)


ODD_VALUES = [None, True, 0, -1, 1e308, "", "\x00", "\ud800", "é" * 300, [], {}, [{"a": [1]}], "x" * 20_000]


async def test_odd_values_in_every_field_of_every_route_get_a_4xx_never_a_5xx(accounts_client):
    client = await accounts_client()
    registered, _ = await _register(client)
    auth = _bearer(registered.json()["access_token"])
    routes = [
        ("POST", "/v1/auth/register", ["email", "password", "display_name", "role"], {}),
        ("POST", "/v1/auth/register", ["email", "password", "display_name", "invite_token", "company_id"], {}),
        ("POST", "/v1/auth/login", ["email", "password"], {}),
        ("POST", "/v1/auth/refresh", ["refresh_token"], {}),
        ("PATCH", "/v1/me", ["display_name"], auth),
    ]
    for method, path, fields, headers in routes:
        for field in fields:
            for value in ODD_VALUES:
                valid = {
                    "email": _email(),
                    "password": PASSWORD,
                    "display_name": "Ada",
                    "role": "candidate",
                    "invite_token": "some-token",
                    "company_id": str(uuid.uuid4()),
                }
                body = {**valid, "refresh_token": "some-token", field: value}
                body = {name: body[name] for name in fields}
                content = json.dumps(body).encode()
                response = await client.request(
                    method, path, content=content, headers={**headers, "content-type": "application/json"}
                )
                assert 400 <= response.status_code < 500, (path, field, value, response.text)
        for raw in (b"", b"null", b"[]", b'"text"', b"[" * 10_000, b'{"a": NaN}'):
            response = await client.request(
                method, path, content=raw, headers={**headers, "content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, (path, raw[:20], response.text)
