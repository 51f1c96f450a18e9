"""A local HTTP receiver for the SMS and push webhooks, capturing every delivery as a JSON file.

``python -m stack.webhooks [--port N] [--dir PATH]`` serves on 127.0.0.1 (port 8026 by default, the port of
the default ``JOBSTREAM_SMS_WEBHOOK_URL`` and ``JOBSTREAM_PUSH_WEBHOOK_URL``) until SIGTERM or Ctrl-C.
A POST to ``/<channel>`` with a JSON body is written to ``<dir>/<channel>/<ns timestamp>-<random>.json``
(through a temporary file and a rename) and answered 202; anything else gets a 4xx.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from jobstream.settings import Settings

CHANNELS = ("sms", "push")
_MAX_BODY = 64 * 1024


class WebhookCapture:
    """An HTTP server on `host`:`port` writing each webhook body under `directory/<channel>/`."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        handler = type("Handler", (_CaptureHandler,), {"directory": directory})
        self._server = ThreadingHTTPServer((host, port), handler)
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookCapture:
        for channel in CHANNELS:
            (self.directory / channel).mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-capture", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> WebhookCapture:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def captured_webhooks(directory: Path, channel: str) -> list[dict[str, object]]:
    """Every body captured for `channel`, oldest first."""
    folder = directory / channel
    if not folder.exists():
        return []
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


class _CaptureHandler(BaseHTTPRequestHandler):
    directory: Path

    def do_POST(self) -> None:
        channel = urlsplit(self.path).path.strip("/")
        if channel not in CHANNELS:
            self._answer(404, {"error": f"unknown channel {channel!r}; expected one of {list(CHANNELS)}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._answer(413, {"error": f"body over {_MAX_BODY} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError as error:
            self._answer(400, {"error": f"body is not JSON: {error}"})
            return
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        temporary = self.directory / channel / f".{name}.tmp"
        temporary.write_text(json.dumps(body))
        temporary.rename(self.directory / channel / f"{name}.json")
        self._answer(202, {"captured": name})

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    default_port = urlsplit(settings.notifications.sms_webhook_url).port or 8026
    parser = argparse.ArgumentParser(prog="python -m stack.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--dir", type=Path, default=settings.local_dir / "webhooks")
    args = parser.parse_args(argv)
    stopped = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with WebhookCapture(args.dir, port=args.port) as capture:
        print(f"webhook capture on {capture.host}:{capture.port}, bodies in {capture.directory}", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
