"""`python -m gateway`: serve the gateway with uvicorn on JOBSTREAM_GATEWAY_HOST:JOBSTREAM_GATEWAY_PORT."""

from __future__ import annotations

import sys

import uvicorn

from gateway.app import build_app
from jobstream.errors import SettingsError
from jobstream.settings import Settings


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    # proxy_headers=False: build_app applies X-Forwarded-For itself, from JOBSTREAM_GATEWAY_TRUSTED_PROXIES only.
    uvicorn.run(build_app(settings), host=settings.gateway.host, port=settings.gateway.port, proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
