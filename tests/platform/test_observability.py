"""Observability of the whole platform (the Procfile under the supervisor, tests.chaos_harness): the Procfile's
Prometheus scrapes every process and finds each one up, every Grafana panel's query returns series once a little
traffic went through, and every metric the dashboards and the alert rules name is one a process really exports.

Grafana itself cannot be installed here, so its part is played by Prometheus' HTTP API: each panel target's `expr`,
with Grafana's interval variables filled in, as an instant query. Prometheus scrapes every 2 s, so rate() has its
two samples within seconds.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from benchmarks.fixtures import scratch_database
from jobstream.settings import PROJECT_ROOT, Settings
from stack.prometheus import RULES, scrape_targets
from tests.chaos_harness import Platform, seed
from tests.e2e_harness import APPLICATION_BODY, wait_for

pytestmark = pytest.mark.timeout(420)

REDIS_DB = 11
DASHBOARDS = sorted((PROJECT_ROOT / "ops" / "grafana").glob("*.json"))
# What Grafana puts in place of its variables; rate() windows of 30 s hold 15 scrapes at 2 s.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__range": "5m", "${datasource}": "prometheus"}
# PromQL words that are not metric names.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}


@pytest.fixture(scope="module")
def platform(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with scratch_database(settings, migrated=True, prefix="jobstream_obs") as database:
        running = Platform(settings, tmp_path_factory.mktemp("obs"), database, REDIS_DB, settings.kafka)
        running.env["JOBSTREAM_PROMETHEUS_SCRAPE_INTERVAL_S"] = "2"
        try:
            yield running.start()
        finally:
            running.stop()


@pytest.fixture(scope="module")
def prometheus(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.env['JOBSTREAM_PROMETHEUS_PORT']}"


@pytest.fixture(scope="module")
def traffic(platform: Platform) -> None:
    """Registrations (the outbox), jobs, applications (decisions, emails, every sink), reads (caches, long-polls)."""
    candidates, jobs = seed(platform, candidates=3, jobs=2)
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        applications = []
        for candidate in candidates:
            headers = {"Authorization": f"Bearer {candidate['token']}", "Idempotency-Key": str(uuid.uuid4())}
            answer = client.post(f"/v1/jobs/{jobs[0]}/applications", json=APPLICATION_BODY, headers=headers)
            assert answer.status_code == 202, answer.text
            applications.append((answer.json()["application_id"], headers))
        for application_id, headers in applications:
            status = client.get(f"/v1/applications/{application_id}", params={"wait": 20}, headers=headers)
            assert status.status_code == 200 and status.json()["status"] != "pending", status.text
        for job_id in jobs:
            assert client.get(f"/v1/jobs/{job_id}").status_code == 200
        assert client.get("/v1/jobs", params={"q": "Chaos"}).status_code == 200


def api(prometheus: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel target, Grafana's variables filled in."""
    queries = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append((path.name, panel["title"], expr))
    return queries


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric and recording-rule names an expression selects (a small reading of PromQL, enough for ours)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)  # label matchers and range windows
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", bare):
        if match[2] is None and match[1] not in _KEYWORDS:
            names.add(match[1])
    return names


@pytest.mark.unit
def test_the_reading_of_promql_finds_the_metrics_and_nothing_else():
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(gateway_request_seconds_bucket{route!~"/x"}[5m]) '
        "unless a_total offset 10m)) / on(job) group_left b:c:d or vector(0) > bool 2^30"
    )
    assert metric_names(expr) == {"gateway_request_seconds_bucket", "a_total", "b:c:d"}


def test_prometheus_scrapes_every_process_and_finds_each_up(platform, prometheus):
    expected = set(scrape_targets(Settings.from_env(platform.env)))

    def health() -> dict[str, str]:
        try:
            targets = api(prometheus, "targets", state="active")["activeTargets"]
        except httpx.HTTPError:
            return {}
        return {target["labels"]["job"]: target["health"] for target in targets}

    seen: dict[str, str] = {}

    def all_up() -> bool:
        seen.update(health())
        return set(seen) == expected and set(seen.values()) == {"up"}

    started = time.monotonic()
    wait_for(all_up, 60, f"every target up (last: {seen})")
    assert time.monotonic() - started < 60


def test_every_dashboard_panel_returns_series(platform, prometheus, traffic):
    queries = panel_queries()
    assert len(queries) >= 40 and {Path(name).stem for name, _, _ in queries} == {
        "gateway",
        "pipeline",
        "read_models",
        "stores",
        "processes",
    }
    empty: list[str] = []

    def every_panel_has_series() -> bool:
        empty.clear()
        for name, title, expr in queries:
            if not api(prometheus, "query", query=expr)["result"]:
                empty.append(f"{name} / {title}: {expr}")
        return not empty

    try:
        wait_for(every_panel_has_series, 90, "series for every panel", interval_s=2)
    except AssertionError:
        pytest.fail("panels without series:\n" + "\n".join(empty))


def test_every_metric_the_dashboards_and_rules_name_is_exported(platform, prometheus, traffic):
    names = {name for _, _, expr in panel_queries() for name in metric_names(expr)}
    names |= {name for expr in rule_expressions() for name in metric_names(expr)}
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}

    def missing() -> set[str]:
        # The series Prometheus holds, and the families the targets declare, with or without samples yet (named as
        # in the metadata API: a counter without its _total, a histogram without _bucket, _count and _sum).
        families = set(api(prometheus, "metadata"))
        series = set(api(prometheus, "label/__name__/values"))
        suffixes = ("", "_total", "_bucket", "_count", "_sum")
        exported = series | {family + suffix for family in families for suffix in suffixes}
        return {name for name in names if name not in exported and name not in recorded}

    left: set[str] = set()

    def none_missing() -> bool:
        left.clear()
        left.update(missing())
        return not left

    try:
        wait_for(none_missing, 30, "every named metric exported", interval_s=2)
    except AssertionError:
        pytest.fail(f"named by the dashboards or rules but exported by no process: {sorted(left)}")
