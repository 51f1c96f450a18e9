"""Tables, the machine and versions a run happened on, and the Markdown report each run appends to."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pymysql
import redis

from jobstream.settings import Settings
from stack.kafka import kafka_version

_PACKAGES = ("starlette", "uvicorn", "confluent-kafka", "quixstreams", "pymysql", "dbutils", "redis", "pyjwt")


@dataclass
class Table:
    """One scenario's figures: rows of (name, value, unit) plus the commands and notes that produced them."""

    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float | int | str, unit: str = "") -> None:
        if isinstance(value, float):
            text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = value
        self.rows.append((name, text, unit))

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| figure | value | unit |", "| --- | ---: | --- |"]
        lines += [f"| {name} | {value} | {unit} |" for name, value, unit in self.rows]
        if self.commands:
            lines += ["", "Load and baseline commands:", ""]
            lines += [f"- `{command}`" for command in self.commands]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        width = max((len(name) for name, _, _ in self.rows), default=10)
        values = max((len(value) for _, value, _ in self.rows), default=5)
        lines = [self.title, "-" * len(self.title)]
        lines += [f"{name:<{width}}  {value:>{values}}  {unit}" for name, value, unit in self.rows]
        return "\n".join(lines)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def machine(settings: Settings) -> list[str]:
    """Cores, CPU model and every version that matters, as Markdown bullet lines."""
    model = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    packages = ", ".join(f"{name} {_version(name)}" for name in _PACKAGES)
    return [
        f"- machine: {os.cpu_count()} cores, {model}, {platform.platform()}",
        f"- Python {platform.python_version()}; {packages}",
        f"- Kafka {kafka_version()} (KRaft, {settings.local_kafka_brokers} node(s) at {settings.kafka.bootstrap}); "
        f"MariaDB {_mariadb_version(settings)}; Redis {_redis_version(settings)}",
        f"- {_wrk_version()}",
    ]


def append_report(path: Path, command: str, settings: Settings, tables: list[Table]) -> None:
    """Append one run (its command, machine, versions and tables) to the Markdown report at `path`."""
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = [f"## Run {started}: `{command}`", "", *machine(settings), ""]
    block += [table.markdown() for table in tables]
    with path.open("a") as report:
        report.write("\n" + "\n".join(block))


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _mariadb_version(settings: Settings) -> str:
    address = settings.mysql
    connection = pymysql.connect(
        host=address.host, port=address.port, user=address.user, password=address.password, connect_timeout=5
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        return str(cursor.fetchone()[0])


def _redis_version(settings: Settings) -> str:
    with redis.Redis.from_url(settings.redis_url, socket_timeout=5) as client:
        return str(client.info("server")["redis_version"])


def _wrk_version() -> str:
    from benchmarks.wrk import wrk_binary

    result = subprocess.run([str(wrk_binary()), "--version"], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk (version unknown)"
