import asyncio
import json
import time
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.requests import Request

from gateway.clients.mysql import GatewayMySQL
from gateway.http.errors import ApiError
from gateway.http.principal import Role
from gateway.http.validation import read_json
from schemas import load_event_schemas
from tests.kafka_helpers import consume_until

pytestmark = pytest.mark.anyio

JSON_CONTENT_TYPE = (b"content-type", b"application/json")

EVENTS = load_event_schemas()
VALID = {"cover_letter": "I would love to build this.", "resume_url": "https://cv.example.com/ada.pdf"}
CLOSED_PORT_BOOTSTRAP = "127.0.0.1:1"
# How long to keep reading after the expected events, so that a duplicate would be seen.
SETTLE_S = 1.5


def _events_for(consumer, job_id: str, *, expect: int) -> list[dict]:
    """The job's events: waits for `expect` of them, then a little longer so that an extra one would show."""
    keep = lambda m: m.key() == job_id.encode()  # noqa: E731
    messages = consume_until(consumer, lambda kept: len(kept) >= expect, 10, keep=keep)
    messages += consume_until(consumer, lambda kept: False, SETTLE_S, keep=keep)
    return [EVENTS["application_created"].decode(m.value()) for m in messages]


async def test_apply_answers_202_only_once_the_event_is_in_kafka(gateway_factory, mint_token, kafka_tail):
    consumer = kafka_tail("application.created")
    client = await gateway_factory()
    candidate_id, headers = mint_token(Role.CANDIDATE)
    job_id = str(uuid.uuid4())

    response = await client.post(f"/v1/jobs/{job_id}/applications", json=VALID, headers=headers)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    [event] = _events_for(consumer, job_id, expect=1)
    assert event["application_id"] == body["application_id"]
    assert event["candidate_id"] == candidate_id
    assert event["cover_letter"] == VALID["cover_letter"]
    assert event["resume_url"] == VALID["resume_url"]
    assert event["idempotency_key"] is None
    assert event["contact_email"] is None  # never looked up: the notifications stage resolves the address


async def _register_candidate(client) -> dict:
    body = {
        "email": f"cand-{uuid.uuid4().hex[:12]}@example.com",
        "password": "correct horse battery staple",
        "display_name": "Ada",
    }
    response = await client.post("/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_registered_candidates_application_makes_no_mysql_query(gateway_factory, kafka_tail, monkeypatch):
    consumer = kafka_tail("application.created")
    client = await gateway_factory()
    candidate = await _register_candidate(client)
    calls: list[str] = []
    call = GatewayMySQL._call

    async def counted(self, work):
        calls.append(getattr(work, "__qualname__", repr(work)))
        return await call(self, work)

    # Every MySQL statement of the gateway (read models and accounts alike) goes through this one method.
    monkeypatch.setattr(GatewayMySQL, "_call", counted)
    job_id = str(uuid.uuid4())
    keyed = {"Authorization": f"Bearer {candidate['access_token']}", "Idempotency-Key": f"nosql-{uuid.uuid4()}"}

    first = await client.post(f"/v1/jobs/{job_id}/applications", json=VALID, headers=keyed)
    replay = await client.post(f"/v1/jobs/{job_id}/applications", json=VALID, headers=keyed)

    assert first.status_code == replay.status_code == 202, first.text
    assert calls == []
    [event] = _events_for(consumer, job_id, expect=1)
    assert event["candidate_id"] == candidate["user"]["user_id"]
    assert event["contact_email"] is None  # the notifications stage resolves the address from user.registered
    # The count sees MySQL work where there is some: listing one's applications reads the read model.
    listed = await client.get("/v1/me/applications", headers={"Authorization": keyed["Authorization"]})
    assert listed.status_code == 200 and calls


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"resume_url": VALID["resume_url"]}, "cover_letter", "missing_field"),
        ({**VALID, "cover_letter": ""}, "cover_letter", "invalid_field"),
        ({**VALID, "cover_letter": "x" * 10_001}, "cover_letter", "invalid_field"),
        ({**VALID, "cover_letter": 42}, "cover_letter", "invalid_field"),
        ({**VALID, "cover_letter": "bad \ud800 surrogate"}, "cover_letter", "invalid_field"),
        ({**VALID, "cover_letter": "Dear team\x1b[2J"}, "cover_letter", "invalid_field"),
        ({**VALID, "referral_source": "ads\r\nX-Injected: 1"}, "referral_source", "invalid_field"),
        ({**VALID, "resume_url": "http://cv.example.com/a.pdf"}, "resume_url", "invalid_field"),
        ({**VALID, "resume_url": "javascript:alert(1)"}, "resume_url", "invalid_field"),
        ({**VALID, "resume_url": "https://" + "a" * 2_050 + ".com"}, "resume_url", "invalid_field"),
        ({**VALID, "resume_url": "https:// spaced.example.com"}, "resume_url", "invalid_field"),
        ({**VALID, "salary": 1}, "salary", "unknown_field"),
        ([VALID], None, "invalid_body"),
    ],
)
async def test_each_invalid_application_names_its_field(gateway_factory, mint_token, body, field, code):
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)

    response = await _post_json(client, f"/v1/jobs/{uuid.uuid4()}/applications", body, headers)

    assert response.status_code == 422, response.text
    assert response.json() == {"error": {"code": code, "message": response.json()["error"]["message"], "field": field}}


async def test_a_bad_job_id_or_idempotency_key_is_named(gateway_factory, mint_token):
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)

    bad_job = await client.post("/v1/jobs/1 OR 1=1/applications", json=VALID, headers=headers)
    bad_key = await client.post(
        f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers={**headers, "Idempotency-Key": "a b"}
    )

    assert (bad_job.status_code, bad_job.json()["error"]["field"]) == (422, "job_id")
    assert (bad_key.status_code, bad_key.json()["error"]["field"]) == (422, "Idempotency-Key")


@pytest.mark.unit
async def test_a_client_hanging_up_mid_body_gets_499_not_an_internal_error():
    messages = [
        {"type": "http.request", "body": b'{"cover_letter": "Dear', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": [JSON_CONTENT_TYPE]}
    with pytest.raises(ApiError) as refused:
        await read_json(Request(scope, receive), max_bytes=1_024)

    assert (refused.value.status, refused.value.code) == (499, "client_disconnected")


async def test_malformed_json_wrong_media_type_and_oversized_bodies_get_4xx(gateway_factory, mint_token):
    client = await gateway_factory(max_body_bytes=2_048)
    _, headers = mint_token(Role.CANDIDATE)
    url = f"/v1/jobs/{uuid.uuid4()}/applications"
    json_headers = {**headers, "Content-Type": "application/json"}

    malformed = await client.post(url, content=b'{"cover_letter": ', headers=json_headers)
    nan = await client.post(url, content=b'{"cover_letter": NaN}', headers=json_headers)
    form = await client.post(url, data={"cover_letter": "x"}, headers=headers)
    huge = await client.post(url, json={**VALID, "cover_letter": "x" * 3_000}, headers=headers)

    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "malformed_json")
    assert nan.status_code == 400
    assert (form.status_code, form.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "body_too_large")


async def test_only_an_authenticated_candidate_may_apply(gateway_factory, mint_token):
    client = await gateway_factory()
    _, employer = mint_token(Role.EMPLOYER, str(uuid.uuid4()))
    url = f"/v1/jobs/{uuid.uuid4()}/applications"

    anonymous = await client.post(url, json=VALID)
    wrong_role = await client.post(url, json=VALID, headers=employer)
    tampered = await client.post(url, json=VALID, headers={"Authorization": "Bearer not.a.token"})

    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthenticated")
    assert (wrong_role.status_code, wrong_role.json()["error"]["code"]) == (403, "forbidden")
    assert tampered.status_code == 401


async def test_an_idempotency_key_replay_returns_the_same_id_and_writes_one_event(
    gateway_factory, mint_token, kafka_tail
):
    consumer = kafka_tail("application.created")
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)
    job_id = str(uuid.uuid4())
    keyed = {**headers, "Idempotency-Key": f"retry-{uuid.uuid4()}"}

    first = await client.post(f"/v1/jobs/{job_id}/applications", json=VALID, headers=keyed)
    second = await client.post(f"/v1/jobs/{job_id}/applications", json=VALID, headers=keyed)
    other_body = await client.post(
        f"/v1/jobs/{job_id}/applications", json={**VALID, "cover_letter": "another"}, headers=keyed
    )

    assert first.status_code == second.status_code == 202
    assert first.json()["application_id"] == second.json()["application_id"]
    assert (other_body.status_code, other_body.json()["error"]["code"]) == (422, "idempotency_key_reused")
    events = _events_for(consumer, job_id, expect=1)
    assert [e["application_id"] for e in events] == [first.json()["application_id"]]
    assert events[0]["idempotency_key"] == keyed["Idempotency-Key"]


async def test_concurrent_requests_with_one_key_produce_one_event(gateway_factory, mint_token, kafka_tail):
    consumer = kafka_tail("application.created")
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)
    job_id = str(uuid.uuid4())
    keyed = {**headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}

    responses = await asyncio.gather(
        *(client.post(f"/v1/jobs/{job_id}/applications", json=VALID, headers=keyed) for _ in range(5))
    )

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {202, 409} and 202 in statuses
    assert all(r.headers["Retry-After"] == "1" for r in responses if r.status_code == 409)
    assert len({r.json()["application_id"] for r in responses if r.status_code == 202}) == 1
    assert len(_events_for(consumer, job_id, expect=1)) == 1


async def test_an_unreachable_broker_gives_503_with_retry_after_within_the_bound(
    gateway_factory, mint_token, redis_client
):
    client = await gateway_factory(bootstrap=CLOSED_PORT_BOOTSTRAP, produce_timeout_ms=1_000)
    _, headers = mint_token(Role.CANDIDATE)
    key = f"down-{uuid.uuid4()}"

    started = time.monotonic()
    response = await client.post(
        f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers={**headers, "Idempotency-Key": key}
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "kafka_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert 0.9 <= elapsed < 2.5
    # The key is left retryable, with the id a retry will reuse: never "done" for an unacknowledged write.
    stored = [k for k in redis_client.scan_iter(match=f"jobstream:gateway:idempotency:*:{key}")]
    assert len(stored) == 1 and redis_client.get(stored[0]).startswith(b"failed|")


async def test_after_repeated_kafka_failures_the_breaker_answers_503_at_once(gateway_factory, mint_token):
    client = await gateway_factory(bootstrap=CLOSED_PORT_BOOTSTRAP, produce_timeout_ms=300, breaker_failures=2)
    _, headers = mint_token(Role.CANDIDATE)
    url = f"/v1/jobs/{uuid.uuid4()}/applications"

    waited = [await client.post(url, json=VALID, headers=headers) for _ in range(2)]
    started = time.monotonic()
    refused = await client.post(url, json=VALID, headers=headers)
    refused_after = time.monotonic() - started

    assert [r.status_code for r in waited] == [503, 503]
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "kafka_unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused_after < 0.2


async def test_past_the_inflight_bound_and_a_full_queue_requests_fail_fast_with_503(gateway_factory, mint_token):
    client = await gateway_factory(
        bootstrap=CLOSED_PORT_BOOTSTRAP, produce_timeout_ms=1_500, max_inflight=1, max_queued=0
    )
    _, headers = mint_token(Role.CANDIDATE)

    slow = asyncio.create_task(client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers=headers))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    refused = await client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers=headers)
    refused_after = time.monotonic() - started
    health = await client.get("/healthz")

    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "overloaded")
    assert refused.headers["Retry-After"] == "1"
    assert refused_after < 0.5
    assert health.status_code == 200
    assert (await slow).status_code == 503


async def test_past_the_inflight_bound_requests_wait_their_turn_within_the_queue_wait(gateway_factory, mint_token):
    client = await gateway_factory(
        bootstrap=CLOSED_PORT_BOOTSTRAP, produce_timeout_ms=600, max_inflight=1, max_queued=4, queue_wait_ms=3_000
    )
    _, headers = mint_token(Role.CANDIDATE)

    def apply():
        return client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers=headers)

    started = time.monotonic()
    first = asyncio.create_task(apply())
    await asyncio.sleep(0.1)
    second = await apply()  # waits for the first (600 ms on an unreachable broker), then is served itself
    second_after = time.monotonic() - started

    # Served, not refused: the broker's answer, after both requests took their turn.
    assert [r.json()["error"]["code"] for r in (await first, second)] == ["kafka_unavailable", "kafka_unavailable"]
    assert second_after >= 1.1


async def test_a_request_queued_past_the_queue_wait_gets_503_overloaded(gateway_factory, gateway_metrics, mint_token):
    client = await gateway_factory(
        bootstrap=CLOSED_PORT_BOOTSTRAP, produce_timeout_ms=1_500, max_inflight=1, max_queued=4, queue_wait_ms=300
    )
    _, headers = mint_token(Role.CANDIDATE)

    slow = asyncio.create_task(client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers=headers))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    refused = await client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=VALID, headers=headers)
    refused_after = time.monotonic() - started
    metrics = gateway_metrics(client)

    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "overloaded")
    assert refused.headers["Retry-After"] == "1"
    assert 0.25 <= refused_after < 1.0
    assert 'gateway_overloaded_total{reason="queue_timeout"} 1.0' in metrics
    assert (await slow).json()["error"]["code"] == "kafka_unavailable"


async def test_sql_injection_strings_travel_as_text(gateway_factory, mint_token, kafka_tail):
    consumer = kafka_tail("application.created")
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)
    job_id = str(uuid.uuid4())
    injection = "'); DROP TABLE applications; -- \" OR 1=1 #"

    response = await client.post(
        f"/v1/jobs/{job_id}/applications",
        json={
            "cover_letter": injection,
            "resume_url": "https://x.example.com/?q='%20OR%20'1'='1",
            "referral_source": injection,
        },
        headers=headers,
    )

    assert response.status_code == 202
    [event] = _events_for(consumer, job_id, expect=1)
    assert event["cover_letter"] == injection
    assert event["referral_source"] == injection


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4),
    max_leaves=12,
)
_BODIES = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {"cover_letter": _JSON | st.text(), "resume_url": _JSON | st.text().map(lambda s: "https://" + s)},
        optional={"referral_source": _JSON, "extra": _JSON},
    ),
)


async def test_random_json_bodies_never_get_a_5xx(gateway_factory, mint_token):
    # The broker stays unreachable so that valid bodies answer 503 quickly instead of flooding application.created.
    client = await gateway_factory(
        bootstrap=CLOSED_PORT_BOOTSTRAP, produce_timeout_ms=100, user_burst=10_000, ip_burst=10_000
    )
    _, headers = mint_token(Role.CANDIDATE)
    url = f"/v1/jobs/{uuid.uuid4()}/applications"
    statuses: list[int] = []

    @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=_BODIES)
    def check(body: object) -> None:
        statuses.append(asyncio.run_coroutine_threadsafe(_post(client, url, body, headers), loop).result())

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(check)

    assert statuses
    assert all(s < 500 or s == 503 for s in statuses), sorted(set(statuses))
    assert 422 in statuses


async def _post(client, url: str, body: object, headers: dict[str, str]) -> int:
    response = await _post_json(client, url, body, headers)
    if response.status_code == 503:
        assert response.json()["error"]["code"] == "kafka_unavailable"
    return response.status_code


async def _post_json(client, url: str, body: object, headers: dict[str, str]):
    # json.dumps escapes lone surrogates (\\ud800) that httpx's own UTF-8 encoding would refuse to send.
    return await client.post(url, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
