"""``python -m stack.prometheus``: Prometheus scraping every process of the Procfile, with Jobstream's alert rules.

A supervised process like the others: it writes a configuration whose targets come from the settings (the very
ports the processes serve their metrics on, so the two cannot drift apart), then becomes Debian's
``/usr/bin/prometheus`` (exec, same pid: the supervisor's SIGTERM reaches Prometheus itself). The configuration
and the TSDB live under ``<local_dir>/prometheus/``; the UI and HTTP API on 127.0.0.1:JOBSTREAM_PROMETHEUS_PORT.
The rules are the repository's ``ops/prometheus/rules.yml``, the ones a production Prometheus loads too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from jobstream.errors import JobstreamError
from jobstream.settings import PROJECT_ROOT, Settings
from stack import processes
from stack.packages import find_or_install

RULES = PROJECT_ROOT / "ops" / "prometheus" / "rules.yml"
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def prometheus_binary() -> Path:
    """Debian's prometheus, installed first if missing (as `python -m stack up` does for MariaDB and Redis)."""
    return find_or_install("prometheus", "prometheus")


def promtool_binary() -> Path:
    """promtool, which comes in the same Debian package as Prometheus."""
    return find_or_install("promtool", "prometheus")


def version(binary: Path) -> str:
    """`prometheus, version 2.42.0+ds (...)` as `2.42.0+ds`."""
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    words = (result.stdout or result.stderr).split()
    return words[2] if len(words) > 2 and words[1] == "version" else "unknown version"


def scrape_targets(settings: Settings) -> dict[str, str]:
    """Each process that serves metrics, by its Procfile name, with the address to scrape (a port of 0: none).

    `web`, `smtp` and `webhooks` serve none: static files, and local stand-ins for a mail provider and webhooks.
    """
    gateway = settings.gateway
    gateway_host = "127.0.0.1" if gateway.metrics_host in _ANY_ADDRESS else gateway.metrics_host
    ports = {
        "gateway": (gateway_host, gateway.metrics_port),
        "outbox": ("127.0.0.1", settings.outbox.metrics_port),
        "acceptance": ("127.0.0.1", settings.acceptance.metrics_port),
        "analytics": ("127.0.0.1", settings.analytics.topology.metrics_port),
        "notifications": ("127.0.0.1", settings.notifications.topology.metrics_port),
        "notifications_retry": ("127.0.0.1", settings.notifications.retry_metrics_port),
        "sink_mysql": ("127.0.0.1", settings.sinks.mysql_metrics_port),
        "sink_redis": ("127.0.0.1", settings.sinks.redis_metrics_port),
        "supervisor": ("127.0.0.1", settings.supervisor.metrics_port),
        "prometheus": ("127.0.0.1", settings.prometheus.port),
    }
    return {job: f"{host}:{port}" for job, (host, port) in ports.items() if port}


def config(settings: Settings) -> dict[str, Any]:
    """The Prometheus configuration: one job per process (the `job` label is its Procfile name), and the rules."""
    interval = f"{settings.prometheus.scrape_interval_s}s"
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "scrape_timeout": f"{min(settings.prometheus.scrape_interval_s, 10)}s",
            "external_labels": {"stack": settings.stack},
        },
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]}
            for job, address in scrape_targets(settings).items()
        ],
    }


def command(settings: Settings, binary: Path) -> list[str]:
    """Write the configuration under the local dir; the command line that serves it."""
    directory = settings.local_dir / "prometheus"
    (directory / "data").mkdir(parents=True, exist_ok=True)
    config_file = directory / "prometheus.yml"
    # JSON is YAML: no YAML library is needed to write what Prometheus reads.
    config_file.write_text(json.dumps(config(settings), indent=2) + "\n")
    return [
        str(binary),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{settings.prometheus.port}",
    ]


def main() -> int:
    try:
        settings = Settings.from_env()
        processes.ensure_port_free(settings.prometheus.port, "Prometheus (JOBSTREAM_PROMETHEUS_PORT)")
        argv = command(settings, prometheus_binary())
    except JobstreamError as error:
        print(f"prometheus: {error}", file=sys.stderr)
        return 1
    print(
        f"prometheus: scraping {', '.join(scrape_targets(settings))}; on 127.0.0.1:{settings.prometheus.port}",
        flush=True,
    )
    os.execv(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
