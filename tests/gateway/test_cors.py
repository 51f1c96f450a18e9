"""CORS for the configured browser origins only, answered before any check that may refuse the request."""

import pytest

from gateway.http.principal import Role

pytestmark = pytest.mark.anyio

WEB = "http://127.0.0.1:8080"


async def test_a_configured_origin_gets_its_preflight_and_can_read_every_answer(gateway_factory, mint_token):
    client = await gateway_factory(cors_origins=(WEB,))
    _, headers = mint_token(Role.CANDIDATE)

    preflight = await client.options(
        "/v1/me/applications",
        headers={
            "Origin": WEB,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    allowed = await client.get("/v1/me/applications", headers={"Origin": WEB, **headers})
    refused = await client.get("/v1/me/applications", headers={"Origin": WEB})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == WEB
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == WEB
    # A 401 the browser can read, with the headers it needs to act on it.
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == WEB
    assert "retry-after" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers


async def test_another_origin_and_an_unconfigured_gateway_get_no_cors_headers(gateway_factory):
    configured = await gateway_factory(cors_origins=(WEB,))
    unconfigured = await gateway_factory(cors_origins=())
    request = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}

    foreign_preflight = await configured.options("/v1/jobs", headers=request)
    foreign_get = await configured.get("/v1/jobs", headers={"Origin": "https://evil.example"})
    plain = await unconfigured.get("/v1/jobs", headers={"Origin": WEB})

    assert foreign_preflight.status_code == 400
    assert "access-control-allow-origin" not in foreign_preflight.headers
    assert foreign_get.status_code == 200 and "access-control-allow-origin" not in foreign_get.headers
    assert "access-control-allow-origin" not in plain.headers
