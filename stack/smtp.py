"""A local SMTP server (aiosmtpd) that captures every message it accepts as a file under a folder.

``python -m stack.smtp [--port N] [--dir PATH]`` serves on 127.0.0.1 (port from ``JOBSTREAM_SMTP_PORT``,
folder ``<JOBSTREAM_LOCAL_DIR>/mail``) until SIGTERM or Ctrl-C. Each message is written as
``<ns timestamp>-<random>.eml`` through a temporary file and a rename, so readers never see half a message.
Tests start ``SmtpCapture`` on a free port and read what arrived with ``captured_mail`` / ``wait_for_mail``.
"""

from __future__ import annotations

import argparse
import email.policy
import signal
import threading
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import FrameType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobstream.settings import Settings
from stack.processes import free_port

# Decides, per message, whether to refuse it: returns an SMTP reply such as "451 4.3.0 try later", or None.
RefusalPolicy = Callable[[Envelope], str | None]


class _CaptureHandler:
    def __init__(self, directory: Path, refuse: RefusalPolicy | None) -> None:
        self._directory = directory
        self._refuse = refuse

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._refuse is not None:
            refusal = self._refuse(envelope)
            if refusal is not None:
                return refusal
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        temporary = self._directory / f".{name}.tmp"
        temporary.write_bytes(content)
        temporary.rename(self._directory / f"{name}.eml")
        return "250 2.0.0 Message captured"


class SmtpCapture:
    """An SMTP server on `host`:`port` writing every accepted message to `directory`; port 0 picks a free one."""

    def __init__(
        self, directory: Path, host: str = "127.0.0.1", port: int = 0, refuse: RefusalPolicy | None = None
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port(host)
        self._refuse = refuse
        self._controller: Controller | None = None

    def start(self) -> SmtpCapture:
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            _CaptureHandler(self.directory, self._refuse),
            hostname=self.host,
            port=self.port,
            ready_timeout=10.0,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpCapture:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def captured_mail(directory: Path) -> list[EmailMessage]:
    """Every message captured in `directory`, oldest first."""
    if not directory.exists():
        return []
    parser = BytesParser(EmailMessage, policy=email.policy.default)
    return [parser.parsebytes(path.read_bytes()) for path in sorted(directory.glob("*.eml"))]


def wait_for_mail(
    directory: Path, matches: Callable[[EmailMessage], bool], count: int = 1, timeout_s: float = 15.0
) -> list[EmailMessage]:
    """Poll `directory` until `count` matching messages arrived or the timeout passed; returns the matches."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [message for message in captured_mail(directory) if matches(message)]
        if len(found) >= count or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m stack.smtp", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.notifications.smtp_port)
    parser.add_argument("--dir", type=Path, default=settings.local_dir / "mail")
    args = parser.parse_args(argv)
    stopped = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with SmtpCapture(args.dir, args.host, args.port) as capture:
        print(f"smtp capture on {capture.host}:{capture.port}, mail in {capture.directory}", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
