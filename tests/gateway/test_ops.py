import asyncio
import random
import uuid

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import build_app
from gateway.clients.mysql import GatewayMySQL
from gateway.clients.producer import EventProducer
from gateway.clients.readmodels import ReadModels
from gateway.http.principal import Role
from gateway.middleware.ratelimit import LocalGcra, Rate
from gateway.ops.routes import OpsRoutes
from jobstream.breaker import CircuitBreaker, CircuitOpen

pytestmark = pytest.mark.anyio

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


async def test_health_and_readiness_answer_and_metrics_are_not_on_the_public_app(
    gateway_factory, gateway_metrics, mint_token
):
    client = await gateway_factory()
    _, headers = mint_token(Role.CANDIDATE)
    await client.get("/v1/me/applications", headers=headers)

    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    public_metrics = await client.get("/metrics")
    metrics = gateway_metrics(client)

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"kafka": "ok", "mysql": "ok", "redis": "ok"}
    assert public_metrics.status_code == 404
    assert 'gateway_request_seconds_count{method="GET",route="/v1/me/applications",status="200"} 1.0' in metrics
    assert "gateway_producer_queue_depth 0.0" in metrics


async def test_gauges_read_their_source_at_each_scrape(gateway_factory, gateway_metrics, mint_token):
    client = await gateway_factory(bootstrap="127.0.0.1:1", produce_timeout_ms=1_500)
    _, headers = mint_token(Role.CANDIDATE)
    body = {"cover_letter": "Hello", "resume_url": "https://cv.example.com/a.pdf"}

    waiting = asyncio.create_task(client.post(f"/v1/jobs/{uuid.uuid4()}/applications", json=body, headers=headers))
    await asyncio.sleep(0.5)
    during = gateway_metrics(client)
    assert (await waiting).status_code == 503
    after = gateway_metrics(client)

    assert "gateway_inflight_requests 1.0" in during
    assert "gateway_producer_queue_depth 1.0" in during  # the event waits in librdkafka for a broker
    assert "gateway_inflight_requests 0.0" in after
    assert "gateway_mysql_connections_in_use 0.0" in after


async def test_concurrent_readiness_probes_ping_each_store_once_a_second(settings, async_redis):
    breaker = CircuitBreaker("test", failures=5, reset_s=1, errors=(OSError,))
    producer = EventProducer(settings.kafka, {}, ack_timeout_s=1, retry_after_s=1, breaker=breaker)
    mysql = GatewayMySQL(settings.mysql, 2, breaker)
    read_models = ReadModels(mysql)
    pings = {"kafka": 0, "mysql": 0, "redis": 0}

    def counted(name, probe):
        def count(*args):
            pings[name] += 1
            return probe(*args)

        return count

    producer.reachable = counted("kafka", producer.reachable)
    read_models.ping = counted("mysql", read_models.ping)
    async_redis.ping = counted("redis", async_redis.ping)
    app = Starlette(routes=OpsRoutes(producer, read_models, async_redis, ready_ttl_s=1.0).routes())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            flood = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
            cached = await client.get("/readyz")
            after_flood = dict(pings)
            await asyncio.sleep(1.1)
            later = await client.get("/readyz")
    finally:
        await asyncio.to_thread(mysql.close)

    assert [r.status_code for r in flood] == [200] * 50 and cached.status_code == 200
    assert after_flood == {"kafka": 1, "mysql": 1, "redis": 1}
    assert later.status_code == 200
    assert pings == {"kafka": 2, "mysql": 2, "redis": 2}


async def test_readiness_names_an_unreachable_broker(gateway_factory):
    client = await gateway_factory(bootstrap="127.0.0.1:1")

    ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["checks"]["kafka"] == "down"
    assert ready.json()["checks"]["mysql"] == "ok"


async def test_the_openapi_document_and_docs_page_cover_every_route(gateway_factory, settings):
    client = await gateway_factory()
    served = {(route.path, method.lower()) for route in build_app(settings).routes for method in route.methods}

    document = (await client.get("/openapi.json")).json()
    docs = await client.get("/docs")

    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert documented == {(path, method) for path, method in served if method != "head"} - {
        ("/openapi.json", "get"),
        ("/docs", "get"),
    }
    assert docs.headers["content-type"].startswith("text/html")
    assert "/v1/jobs/{job_id}/close" in docs.text


async def test_unknown_routes_and_methods_answer_json_errors(gateway_factory):
    client = await gateway_factory()

    missing = await client.get("/v1/nothing-here")
    wrong_method = await client.delete("/v1/jobs")

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


async def test_a_user_past_the_rate_gets_429_with_retry_after_then_recovers(
    gateway_factory, gateway_metrics, mint_token
):
    client = await gateway_factory(user_rate_per_min=120, user_burst=3)
    _, headers = mint_token(Role.CANDIDATE)

    allowed = [await client.get("/v1/me/applications", headers=headers) for _ in range(3)]
    refused = await client.get("/v1/me/applications", headers=headers)
    await asyncio.sleep(int(refused.headers["Retry-After"]) + 0.1)
    recovered = await client.get("/v1/me/applications", headers=headers)
    metrics = gateway_metrics(client)

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
    assert refused.headers["RateLimit-Limit"] == "3"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert recovered.status_code == 200
    assert 'gateway_rate_limited_total{identity="user"} 1.0' in metrics


def _address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def test_without_trusted_proxies_a_rotating_x_forwarded_for_does_not_escape_the_ip_limit(gateway_factory):
    client = await gateway_factory(ip_rate_per_min=60, ip_burst=3, client=(_address(), 40000))

    statuses = [
        (await client.get("/v1/me/applications", headers={"X-Forwarded-For": _address()})).status_code for _ in range(5)
    ]

    assert statuses == [401, 401, 401, 429, 429]


async def test_with_a_trusted_proxy_the_ip_limit_keys_on_the_forwarded_client(gateway_factory):
    proxy = _address()
    client = await gateway_factory(ip_rate_per_min=60, ip_burst=3, trusted_proxies=(proxy,), client=(proxy, 40000))
    one_client = _address()

    rotating = [
        (await client.get("/v1/me/applications", headers={"X-Forwarded-For": _address()})).status_code for _ in range(5)
    ]
    # A spoofed hop before the proxy's own entry changes nothing: the proxy appended the address it saw.
    same = [
        (await client.get("/v1/me/applications", headers={"X-Forwarded-For": f"{_address()}, {one_client}"}))
        for _ in range(4)
    ]

    assert rotating == [401] * 5
    assert [r.status_code for r in same] == [401, 401, 401, 429]


async def test_with_redis_down_reads_work_and_rate_limits_hold_per_instance(gateway_factory):
    client = await gateway_factory(redis_url=CLOSED_PORT_REDIS, ip_rate_per_min=60, ip_burst=5, redis_timeout_ms=100)

    statuses = [
        (await client.get("/v1/jobs", params={"q": f"nothing{uuid.uuid4().hex}"})).status_code for _ in range(7)
    ]

    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429, 429]


@pytest.mark.unit
async def test_an_open_breaker_fails_fast_then_lets_one_trial_through():
    now = [0.0]
    breaker = CircuitBreaker("mysql", failures=2, reset_s=5, errors=(OSError,), clock=lambda: now[0])
    calls = []

    async def failing() -> None:
        calls.append("fail")
        raise OSError("down")

    async def working() -> str:
        calls.append("ok")
        return "ok"

    for _ in range(2):
        with pytest.raises(CircuitOpen):
            await breaker.call(failing)
    with pytest.raises(CircuitOpen) as refused:
        await breaker.call(working)
    now[0] = 5.0
    result = await breaker.call(working)

    assert calls == ["fail", "fail", "ok"]
    assert refused.value.dependency == "mysql" and refused.value.retry_after_s == 5
    assert (result, breaker.state) == ("ok", "closed")


@pytest.mark.unit
def test_the_local_fallback_limiter_applies_the_tightest_limit():
    now = [100.0]
    limiter = LocalGcra(clock=lambda: now[0])
    limits = [("ip:1.2.3.4", Rate(600, 10)), ("user:u", Rate(60, 2))]

    verdicts = [limiter.check(limits) for _ in range(3)]
    now[0] += 1.0
    later = limiter.check(limits)

    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[2].refused_by == "user"
    assert later.allowed
