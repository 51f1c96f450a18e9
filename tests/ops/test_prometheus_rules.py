"""ops/prometheus/rules.yml: valid rules, and every alert proved to fire (and to stay quiet) by `promtool test rules`.

promtool comes with Debian's prometheus package, which `python -m stack up` installs (and the fixture too, as root
with apt-get); without it these tests fail rather than skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from stack.prometheus import RULES, promtool_binary

RULE_TESTS = RULES.with_name("rules_test.yml")


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_binary()


def promtool_run(promtool: Path, *args: str) -> str:
    result = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, check=False, cwd=RULES.parent, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def alert_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_the_rules_are_valid(promtool):
    promtool_run(promtool, "check", "rules", str(RULES))


def test_every_alert_has_a_case_in_which_it_fires_and_one_in_which_it_does_not():
    fires, quiet = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert alert_names() - fires == set(), "alerts never shown to fire"
    assert alert_names() - quiet == set(), "alerts never shown to stay quiet"
    assert fires | quiet <= alert_names(), "cases of alerts that do not exist"


def test_every_alert_case_passes(promtool):
    promtool_run(promtool, "test", "rules", str(RULE_TESTS))
