"""HTTP fuzz: schemathesis drives every route of /openapi.json on the running platform, as each role and as
nobody, and no request gets a 5xx; afterwards every process is still up and a good application still flows
from HTTP to MySQL.

Every request schemathesis sent is read back from its HAR report, so the count and the statuses checked here
are those of the requests made, not schemathesis' own summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from benchmarks.fixtures import scratch_database
from gateway.accounts.tokens import token_service
from gateway.http.principal import Role
from jobstream.settings import Settings
from tests.chaos_harness import Platform, seed
from tests.e2e_harness import APPLICATION_BODY, rows, wait_for

pytestmark = pytest.mark.timeout(900)

REDIS_DB = 8
LOGOUT = "/v1/auth/logout"
MIN_REQUESTS = 5_000
EXAMPLES_PER_OPERATION = 40
# Limits a real client would meet are not what is fuzzed here: one caller sends thousands of requests.
UNLIMITED = {
    variable: "1000000"
    for variable in (
        "JOBSTREAM_GATEWAY_USER_RATE_PER_MIN",
        "JOBSTREAM_GATEWAY_USER_BURST",
        "JOBSTREAM_GATEWAY_IP_RATE_PER_MIN",
        "JOBSTREAM_GATEWAY_IP_BURST",
        "JOBSTREAM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT",
        "JOBSTREAM_LOGIN_MAX_ATTEMPTS_PER_IP",
        "JOBSTREAM_INVITE_RATE_PER_MIN",
        "JOBSTREAM_INVITE_BURST",
    )
}


@pytest.fixture(scope="module")
def platform(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    with scratch_database(settings, migrated=True, prefix="jobstream_chaos") as database:
        running = Platform(settings, tmp_path_factory.mktemp("fuzz"), database, REDIS_DB, settings.kafka)
        running.env.update(UNLIMITED)
        try:
            yield running.start()
        finally:
            running.stop()


def role_headers(platform: Platform) -> dict[str, list[str]]:
    """`-H` arguments per caller: nobody, a real candidate and employer, an analyst and an admin."""
    candidates, _ = seed(platform, candidates=1, jobs=1)
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        employer = client.post(
            "/v1/auth/register",
            json={
                "email": f"fuzz-{uuid.uuid4().hex[:10]}@fuzz.test",
                "password": "correct horse battery staple",
                "display_name": "Fuzz employer",
                "role": "employer",
            },
        )
        assert employer.status_code == 201, employer.text
    # Analysts register only with an invitation and admins not at all: their tokens are signed with the platform's
    # own keys.
    tokens = token_service(Settings.from_env(platform.env).accounts, aioredis.Redis.from_url(platform.redis_url))
    minted = {
        role.value: tokens.issue(str(uuid.uuid4()), role, None, session_id=str(uuid.uuid4())).token
        for role in (Role.ANALYST, Role.ADMIN)
    }
    bearer = {"candidate": candidates[0]["token"], "employer": employer.json()["access_token"], **minted}
    authorized = {role: ["-H", f"Authorization: Bearer {token}"] for role, token in bearer.items()}
    return {
        "anonymous": [],
        # Logging out ends the caller's session, and every later request would get 401: each role fuzzes the
        # rest, and the candidate's logout goes last.
        **{role: [*headers, "--exclude-path", LOGOUT] for role, headers in authorized.items()},
        "candidate logout": [*authorized["candidate"], "--include-path", LOGOUT],
    }


def fuzz(platform: Platform, headers: list[str], seed_value: int, report: Path) -> list[dict[str, Any]]:
    """One schemathesis run over every operation; the HAR entries of the requests it made."""
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{platform.gateway_url}/openapi.json",
        *headers,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        # One worker: concurrent workers crash inside CPython 3.11's ast.parse, which hypothesis calls to
        # describe filters ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--seed",
        str(seed_value),
        "--no-shrink",
        "--generation-database",
        "none",
        # Keep the caller's token: generated Authorization values would only ever get 401.
        "--generation-with-security-parameters",
        "false",
        "--request-timeout",
        "20",
        "--report",
        "har",
        "--report-har-path",
        str(report),
    ]
    # Run beside its report: schemathesis keeps a crash cache (.schemathesis/) in its working directory.
    result = subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=600)
    entries = json.loads(report.read_text())["log"]["entries"]
    assert entries, result.stdout[-3000:] + result.stderr[-3000:]
    server_errors = [e for e in entries if e["response"]["status"] >= 500]
    assert not server_errors, [
        (e["request"]["method"], e["request"]["url"], e["response"]["status"]) for e in server_errors[:5]
    ]
    assert result.returncode == 0, result.stdout[-4000:]
    return list(entries)


def test_no_route_answers_5xx_to_thousands_of_generated_requests_from_any_role(platform, tmp_path):
    callers = role_headers(platform)
    statuses: Counter[int] = Counter()
    for seed_value, (caller, headers) in enumerate(callers.items(), 1):
        answered = Counter(
            int(entry["response"]["status"])
            for entry in fuzz(platform, headers, seed_value, tmp_path / f"{caller}.har")
        )
        print(f"fuzz as {caller}: {dict(sorted(answered.items()))}")
        if caller in ("candidate", "employer", "analyst", "admin"):
            assert answered[401] < sum(answered.values()) / 2, f"{caller}'s token was mostly refused: {answered}"
        statuses += answered
    print(f"fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= MIN_REQUESTS
    assert statuses[200] + statuses[201] + statuses[202] > 0, "nothing the fuzzer sent was ever accepted"

    assert platform.not_running() == {}, platform.supervisor_log()[-3000:]
    assert platform.restarts() == {}, platform.supervisor_log()[-3000:]
    candidates, jobs = seed(platform, candidates=1, jobs=1)
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        applied = client.post(
            f"/v1/jobs/{jobs[0]}/applications",
            json=APPLICATION_BODY,
            headers={"Authorization": f"Bearer {candidates[0]['token']}"},
        )
    assert applied.status_code == 202, applied.text
    application_id = applied.json()["application_id"]
    wait_for(
        lambda: rows(
            platform.settings.mysql,
            platform.database,
            "SELECT status FROM applications WHERE application_id = %s",
            (application_id,),
        ),
        60,
        "the application after the fuzz, decided in MySQL",
    )
