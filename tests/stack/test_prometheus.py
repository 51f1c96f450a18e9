"""`python -m stack.prometheus`: its targets are the ports the settings give each process, and Prometheus accepts the
configuration it writes (`promtool check config`, which checks the rule files it names too)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jobstream.settings import PROJECT_ROOT, Settings
from stack.prometheus import RULES, command, config, promtool_binary, scrape_targets
from stack.supervisor import parse_procfile

# Static pages, and local stand-ins for a mail provider and SMS/push webhooks: nothing to measure.
UNMEASURED = {"web", "smtp", "webhooks"}


@pytest.mark.unit
def test_every_procfile_process_but_the_static_ones_is_scraped_and_the_supervisor_too():
    processes = set(parse_procfile((PROJECT_ROOT / "Procfile").read_text()))
    assert set(scrape_targets(Settings.from_env({}))) == (processes - UNMEASURED) | {"supervisor"}


@pytest.mark.unit
def test_the_default_metrics_ports_are_distinct_and_each_is_the_one_its_process_serves():
    settings = Settings.from_env({})
    targets = scrape_targets(settings)
    assert targets == {
        "gateway": "127.0.0.1:9464",
        "acceptance": "127.0.0.1:9465",
        "analytics": "127.0.0.1:9466",
        "notifications": "127.0.0.1:9467",
        "notifications_retry": "127.0.0.1:9468",
        "supervisor": "127.0.0.1:9470",
        "sink_mysql": "127.0.0.1:9471",
        "sink_redis": "127.0.0.1:9472",
        "outbox": "127.0.0.1:9473",
        "prometheus": "127.0.0.1:9090",
    }
    listeners = [*targets.values(), f"127.0.0.1:{settings.gateway.port}", f"127.0.0.1:{settings.web.port}"]
    assert len(set(listeners)) == len(listeners)


@pytest.mark.unit
def test_targets_follow_the_settings_and_a_port_of_0_is_no_target():
    settings = Settings.from_env(
        {
            "JOBSTREAM_OUTBOX_METRICS_PORT": "19473",
            "JOBSTREAM_NOTIFICATIONS_METRICS_PORT": "19467",
            "JOBSTREAM_SINKS_REDIS_METRICS_PORT": "0",
            "JOBSTREAM_GATEWAY_METRICS_HOST": "0.0.0.0",
            "JOBSTREAM_PROMETHEUS_SCRAPE_INTERVAL_S": "2",
        }
    )
    targets = scrape_targets(settings)
    assert (targets["outbox"], targets["notifications"], targets["notifications_retry"]) == (
        "127.0.0.1:19473",
        "127.0.0.1:19467",
        "127.0.0.1:19468",
    )
    assert "sink_redis" not in targets
    assert targets["gateway"] == "127.0.0.1:9464"  # listening everywhere, scraped on loopback
    written = config(settings)
    assert written["global"]["scrape_interval"] == written["global"]["evaluation_interval"] == "2s"
    assert written["rule_files"] == [str(RULES)]
    assert {job["job_name"]: job["static_configs"][0]["targets"] for job in written["scrape_configs"]} == {
        job: [address] for job, address in targets.items()
    }


def test_prometheus_accepts_the_configuration_and_the_rules_it_names(tmp_path):
    settings = Settings.from_env({"JOBSTREAM_LOCAL_DIR": str(tmp_path)})
    argv = command(settings, Path("/usr/bin/prometheus"))
    config_file = tmp_path / "prometheus" / "prometheus.yml"
    assert f"--config.file={config_file}" in argv
    assert f"--storage.tsdb.path={tmp_path / 'prometheus' / 'data'}" in argv
    assert f"--web.listen-address=127.0.0.1:{settings.prometheus.port}" in argv
    assert json.loads(config_file.read_text()) == config(settings)
    result = subprocess.run(
        [str(promtool_binary()), "check", "config", str(config_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
