"""`python -m gateway.accounts.admin`: `create-user` makes an account of any role (the only way to an admin),
checked like a registration, its password from stdin, its `user.registered` event in the outbox; `invite` prints
an invitation's token for the invitee to register with over HTTP."""

import json
import subprocess
import sys
import uuid

import pytest

from jobstream.settings import PROJECT_ROOT

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


def admin(*args: str, password: str = PASSWORD, command: str = "create-user") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "gateway.accounts.admin", command, *args],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )


def _email() -> str:
    return f"analyst-{uuid.uuid4().hex[:10]}@example.com"


async def test_an_analyst_created_by_the_command_logs_in_and_reads_analytics(gateway_factory, mysql):
    email = _email()
    created = admin("--email", email.upper(), "--display-name", "Grace", "--role", "analyst")
    assert created.returncode == 0, created.stderr
    profile = json.loads(created.stdout)
    assert (profile["email"], profile["role"], profile["company_id"]) == (email, "analyst", None)

    with mysql.cursor() as cursor:
        cursor.execute("SELECT topic FROM outbox WHERE message_key = %s", (profile["user_id"].encode(),))
        assert cursor.fetchall() == (("user.registered",),)
        cursor.execute("SELECT COUNT(*) FROM refresh_tokens WHERE user_id = %s", (profile["user_id"],))
        assert cursor.fetchone() == (0,)  # no session until the account logs in

    client = await gateway_factory()
    login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["role"] == "analyst"
    token = login.json()["access_token"]
    rejections = await client.get("/v1/analytics/rejections", headers={"Authorization": f"Bearer {token}"})
    assert rejections.status_code == 200, rejections.text


def test_an_employer_joins_the_company_it_is_given():
    company_id = str(uuid.uuid4())
    created = admin("--email", _email(), "--display-name", "Ann", "--role", "employer", "--company-id", company_id)
    assert created.returncode == 0, created.stderr
    assert f'"company_id": "{company_id}"' in created.stdout


def test_a_taken_email_exits_1_and_creates_nothing_more():
    email = _email()
    assert admin("--email", email, "--display-name", "A", "--role", "admin").returncode == 0
    again = admin("--email", email, "--display-name", "B", "--role", "analyst")
    assert again.returncode == 1
    assert f"an account with the email {email} exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "password", "says"),
    [
        (["--email", "not-an-email"], PASSWORD, "--email: must be an email address"),
        (["--email", "{email}", "--company-id", str(uuid.uuid4())], PASSWORD, "--company-id: only an employer"),
        (["--email", "{email}", "--display-name", "Bad\nName"], PASSWORD, "--display-name: must not contain"),
        (["--email", "{email}"], "short", "password: must be 12 to 128 characters long"),
    ],
)
def test_an_invalid_argument_exits_2_naming_it(args, password, says):
    args = [arg.replace("{email}", _email()) for arg in args]
    if "--display-name" not in args:
        args += ["--display-name", "Someone"]
    refused = admin(*args, "--role", "analyst", password=password)
    assert refused.returncode == 2
    assert says in refused.stderr


async def test_an_analyst_invited_by_the_command_registers_over_http(gateway_factory):
    email = _email()
    invited = admin("--email", email, "--role", "analyst", command="invite")
    assert invited.returncode == 0, invited.stderr
    invitation = json.loads(invited.stdout)
    assert (invitation["email"], invitation["role"], invitation["company_id"]) == (email, "analyst", None)

    client = await gateway_factory()
    body = {"email": email, "password": PASSWORD, "display_name": "Grace", "invite_token": invitation["invite_token"]}
    registered = await client.post("/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    assert registered.json()["user"]["role"] == "analyst"


def test_an_invitation_to_an_unknown_company_exits_1():
    company_id = str(uuid.uuid4())
    refused = admin("--email", _email(), "--role", "employer", "--company-id", company_id, command="invite")
    assert refused.returncode == 1
    assert f"no employer belongs to the company {company_id}" in refused.stderr
