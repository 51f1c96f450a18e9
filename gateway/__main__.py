"""`python -m gateway`: serve the gateway with uvicorn on JOBSTREAM_GATEWAY_HOST:JOBSTREAM_GATEWAY_PORT, and its
Prometheus metrics on JOBSTREAM_GATEWAY_METRICS_HOST:JOBSTREAM_GATEWAY_METRICS_PORT (127.0.0.1:9464; port 0: none)."""

from __future__ import annotations

import sys

from prometheus_client import start_http_server

from gateway.app import build_app
from gateway.http.server import serve
from gateway.ops.metrics import GatewayMetrics
from jobstream.errors import SettingsError
from jobstream.settings import Settings


def main() -> int:
    try:
        settings = Settings.from_env(identity="gateway")
    except SettingsError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    gw = settings.gateway
    metrics = GatewayMetrics()
    if gw.metrics_port:
        try:
            # prometheus_client's own server, on a daemon thread: scrapes never queue behind API requests.
            start_http_server(gw.metrics_port, addr=gw.metrics_host, registry=metrics.registry)
        except OSError as error:
            print(
                f"gateway: cannot serve metrics on {gw.metrics_host}:{gw.metrics_port} ({error}); set "
                "JOBSTREAM_GATEWAY_METRICS_PORT to a free port, or 0 for none",
                file=sys.stderr,
            )
            return 2
    serve(build_app(settings, metrics=metrics), gw.host, gw.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
