"""`python -m web`: serve the front end on JOBSTREAM_WEB_HOST:JOBSTREAM_WEB_PORT (127.0.0.1:8080), calling the API at
JOBSTREAM_WEB_API_URL (the local gateway by default)."""

from __future__ import annotations

import sys

import uvicorn

from jobstream.errors import SettingsError
from jobstream.settings import Settings
from web.app import build_web_app


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"web: {error}", file=sys.stderr)
        return 2
    web = settings.web
    print(f"web: Jobstream is at http://{web.host}:{web.port}/ (API {web.api_url})", flush=True)
    uvicorn.run(build_web_app(web), host=web.host, port=web.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
