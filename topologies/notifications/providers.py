"""Delivery providers, one per channel: email over SMTP, SMS and push over HTTP webhooks.

A provider sends one rendered notification within a timeout, or raises ``DeliveryError``; ``permanent`` says
whether another attempt could succeed (an SMTP 5xx or HTTP 4xx cannot; a refused connection, a timeout,
an SMTP 4xx or an HTTP 5xx/408/429 can).
"""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from typing import Protocol

import httpx

from jobstream.errors import JobstreamError
from topologies.notifications.templates import Rendered

_MESSAGE_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_ONE_LINE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class DeliveryError(JobstreamError):
    """A provider could not deliver a notification."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Provider(Protocol):
    def send(self, notification_id: str, address: str, message: Rendered, timeout_s: float) -> None:
        """Deliver `message` to `address` within about `timeout_s`, or raise DeliveryError."""
        ...


class SmtpProvider:
    """Sends email through an SMTP relay, one connection per message (relays drop idle connections)."""

    def __init__(self, host: str, port: int, sender: str) -> None:
        self._host = host
        self._port = port
        self._sender = sender

    def send(self, notification_id: str, address: str, message: Rendered, timeout_s: float) -> None:
        try:
            mail = self._compose(notification_id, address, message)
        except (ValueError, TypeError) as error:
            # The email package refuses headers that could smuggle others in (CR/LF) and malformed addresses:
            # no relay could ever accept this message.
            raise DeliveryError(f"cannot compose the email to {address!r}: {error}", permanent=True) from error
        try:
            with smtplib.SMTP(self._host, self._port, timeout=timeout_s) as client:
                client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise DeliveryError(f"smtp refused {address}: {error.recipients}", permanent=min(codes) >= 500) from error
        except smtplib.SMTPResponseException as error:
            detail = (
                error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
            )
            raise DeliveryError(f"smtp {error.smtp_code} {detail}", permanent=error.smtp_code >= 500) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"smtp {self._host}:{self._port}: {error!r}", permanent=False) from error

    def _compose(self, notification_id: str, address: str, message: Rendered) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = address
        # A subject is one line: control characters from a template's params (a job title from before the gateway
        # refused them) become spaces rather than fail the whole notification.
        mail["Subject"] = _ONE_LINE_UNSAFE.sub(" ", message.title)
        # The same id on every attempt, so a receiver that dedupes by Message-ID drops a re-sent copy.
        mail["Message-ID"] = f"<{_MESSAGE_ID_UNSAFE.sub('-', notification_id)}@jobstream.local>"
        mail["X-Jobstream-Notification-Id"] = notification_id
        mail.set_content(message.body)
        return mail


class WebhookProvider:
    """POSTs a JSON notification to an HTTP webhook (an SMS or push gateway); any 2xx is a delivery."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self._url = url
        self._client = client

    def send(self, notification_id: str, address: str, message: Rendered, timeout_s: float) -> None:
        payload = {"notification_id": notification_id, "to": address, "title": message.title, "body": message.body}
        try:
            response = self._client.post(
                self._url,
                json=payload,
                headers={"Idempotency-Key": notification_id},
                timeout=httpx.Timeout(timeout_s),
            )
        except httpx.HTTPError as error:
            raise DeliveryError(f"{message.channel} webhook {self._url}: {error!r}", permanent=False) from error
        if response.is_success:
            return
        status = response.status_code
        permanent = 400 <= status < 500 and status not in (408, 429)
        raise DeliveryError(f"{message.channel} webhook {self._url}: HTTP {status}", permanent=permanent)
