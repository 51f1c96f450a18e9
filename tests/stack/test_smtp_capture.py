"""The dev stack's SMTP capture server: real SMTP on loopback, every accepted message kept as a file."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage

import pytest

from jobstream.settings import PROJECT_ROOT
from stack.smtp import SmtpCapture, captured_mail, free_port, wait_for_mail

pytestmark = pytest.mark.unit


def _mail(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.test"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def test_accepted_mail_is_stored_as_one_file_per_message(tmp_path):
    with SmtpCapture(tmp_path / "mail") as capture, smtplib.SMTP(capture.host, capture.port, timeout=5) as client:
        client.send_message(_mail("a@example.test", "first", "hello a"))
        client.send_message(_mail("b@example.test", "second", "hello b"))
    files = sorted((tmp_path / "mail").iterdir())
    assert [path.suffix for path in files] == [".eml", ".eml"]
    mail = captured_mail(tmp_path / "mail")
    assert [(m["To"], m["Subject"]) for m in mail] == [("a@example.test", "first"), ("b@example.test", "second")]
    assert mail[1].get_content().strip() == "hello b"


def test_a_refusal_policy_answers_with_its_reply_and_stores_nothing(tmp_path):
    def refuse(envelope):
        return "451 4.3.0 try later" if envelope.rcpt_tos[0].startswith("busy") else None

    with SmtpCapture(tmp_path, refuse=refuse) as capture, smtplib.SMTP(capture.host, capture.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(_mail("busy@example.test", "refused", "x"))
        client.send_message(_mail("free@example.test", "accepted", "y"))
    assert refused.value.smtp_code == 451
    assert [m["Subject"] for m in captured_mail(tmp_path)] == ["accepted"]


def test_wait_for_mail_returns_what_arrived_by_the_timeout(tmp_path):
    with SmtpCapture(tmp_path) as capture:
        assert wait_for_mail(tmp_path, lambda m: True, timeout_s=0.2) == []
        with smtplib.SMTP(capture.host, capture.port, timeout=5) as client:
            client.send_message(_mail("c@example.test", "late", "z"))
        [message] = wait_for_mail(tmp_path, lambda m: m["Subject"] == "late", timeout_s=5)
    assert message["To"] == "c@example.test"


def test_python_m_stack_smtp_serves_until_sigterm(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stack.smtp", "--port", str(port), "--dir", str(tmp_path / "mail")],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert f"smtp capture on 127.0.0.1:{port}" in process.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.send_message(_mail("d@example.test", "via process", "w"))
        assert [m["Subject"] for m in wait_for_mail(tmp_path / "mail", lambda m: True, timeout_s=5)] == ["via process"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=1)
