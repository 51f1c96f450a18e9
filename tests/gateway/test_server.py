"""`python -m gateway` as deployed: metrics on their own port, no X-Forwarded-For believed by default."""

import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis

from state import redis_keys
from tests.gateway_process import gateway_process

pytestmark = pytest.mark.anyio

# The rate-limit test's own Redis database: the shared one holds every other test's limits for 127.0.0.1.
PRIVATE_REDIS_DB = 9


async def test_metrics_are_served_on_their_own_port_and_not_on_the_public_one(tmp_path):
    with gateway_process(tmp_path) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            search = await client.get("/v1/jobs", params={"q": f"nothing{uuid.uuid4().hex}"})
            public = await client.get("/metrics")
        with urllib.request.urlopen(f"http://127.0.0.1:{gateway.metrics_port}/metrics", timeout=5) as response:
            scraped = response.read().decode()

    assert search.status_code == 200
    assert public.status_code == 404
    assert 'gateway_request_seconds_count{method="GET",route="/v1/jobs",status="200"} 1.0' in scraped
    assert "gateway_producer_queue_depth 0.0" in scraped
    assert "gateway_inflight_requests 0.0" in scraped


async def test_the_server_believes_no_x_forwarded_for_unless_told_to(settings, tmp_path):
    private = urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{PRIVATE_REDIS_DB}"))
    env = {"JOBSTREAM_REDIS_URL": private}
    limits = {"ip_rate_per_min": "6", "ip_burst": "3"}
    statuses = {}
    for trusted in ("", "127.0.0.1"):
        with redis.Redis.from_url(private, socket_timeout=5) as limits_db:
            for key in limits_db.scan_iter(match=redis_keys.rate_limit("*")):
                limits_db.delete(key)
        with gateway_process(tmp_path, env=env, trusted_proxies=trusted, **limits) as gateway:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                statuses[trusted] = [
                    (await client.get("/v1/me/applications", headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code
                    for i in range(5)
                ]

    assert statuses[""] == [401, 401, 401, 429, 429]
    assert statuses["127.0.0.1"] == [401] * 5
