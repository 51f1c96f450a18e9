"""How the gateway is served: one uvicorn worker on uvloop with the httptools parser, no access log.

The benchmarks' baselines are served by this same function, so a ratio against them compares the application, not
the server. No access log: a formatted line per request is work on the one event loop; requests are counted, timed
and labelled by status in the Prometheus metrics instead, and errors are still logged. `proxy_headers=False`: the
gateway applies X-Forwarded-For itself, from JOBSTREAM_GATEWAY_TRUSTED_PROXIES only.
"""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Serve `app` until SIGINT or SIGTERM."""
    uvicorn.run(app, host=host, port=port, loop="uvloop", http="httptools", access_log=False, proxy_headers=False)
