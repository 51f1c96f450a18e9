"""The benchmark harness still runs: a few seconds of `python -m benchmarks <scenario> --quick` per scenario.

Only the shape of the report is checked (a table, nonzero counts); never a timing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobstream.settings import PROJECT_ROOT

_ROW = re.compile(r"^\| (?P<name>[^|]+?) \| (?P<value>[^|]*?) \| (?P<unit>[^|]*?) \|$", re.MULTILINE)


def run_quick(scenario: str, report: Path) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", scenario, "--quick", "--report", str(report)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = report.read_text()
    assert f"`python -m benchmarks {scenario} --quick" in text
    assert "- machine: " in text and "cores" in text
    return {m["name"]: m["value"] for m in _ROW.finditer(text) if m["name"] not in ("figure", "---")}


def number(text: str) -> float:
    return float(text.replace(",", "").split()[0])


@pytest.mark.timeout(300)
def test_gateway_ceiling_quick_produces_a_table_with_accepted_requests(tmp_path):
    rows = run_quick("gateway", tmp_path / "report.md")

    assert number(rows["bare Starlette 202/s (mean of rounds)"]) > 0
    assert number(rows["gateway accepted (202, Kafka-acked)/s (mean of rounds)"]) > 0
    assert number(rows["ratio gateway / bare: throughput"]) > 0
    assert number(rows["gateway round 1: 202 / other statuses"]) > 0


@pytest.mark.timeout(300)
def test_sink_quick_produces_a_table_with_rows_written(tmp_path):
    rows = run_quick("sink", tmp_path / "report.md")

    batched = [value for name, value in rows.items() if name.startswith("batched sink")]
    assert batched and all(number(value) > 0 for value in batched)
    assert any(name.startswith("ratio batched") and number(value) > 0 for name, value in rows.items())


@pytest.mark.timeout(300)
def test_replay_quick_produces_a_table_with_every_event_rebuilt(tmp_path):
    rows = run_quick("replay", tmp_path / "report.md")

    assert number(rows["replay (sinks.sre.replay.replay, wall time / events)"]) > 0
    assert number(rows["raw read_committed consume + Avro decode, same topic"]) > 0
    assert number(rows["ratio replay / raw read + decode"]) > 0
    assert number(rows["rows in the rebuilt applications table"]) == 20_000
    # Every application, plus a job_funnel row for each of the 200 jobs.
    assert number(rows["snapshot rows written to Kafka"]) == 20_200
    assert number(rows["replay from the snapshot: rows loaded / s"]) > 0
