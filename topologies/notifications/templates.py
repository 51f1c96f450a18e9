"""The notification templates the platform sends, rendered per channel from a request's params.

Each template has an email subject and body, an SMS text and a push title and body, written with
``{param}`` placeholders. A missing param or an unknown template is a ``TemplateError``: retrying cannot fix it.

Two params are derived here, never sent, so every producer gets the same wording: ``greeting`` is "Hello <name>,"
from ``recipient_name`` (the display name the notifications stage joins in from ``user.registered``) and a neutral
"Hello," without one, so no id ever stands in for a name; ``stage_news`` is what a ``stage`` means to the candidate.
No event carries a company's name (job.lifecycle has its id only), so templates name the job by its title alone.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from jobstream.errors import JobstreamError

Channel = Literal["email", "sms", "push"]


class TemplateError(JobstreamError):
    """A notification names a template that does not exist, or lacks a param its template needs."""


@dataclass(frozen=True)
class Rendered:
    """What a provider sends: `title` is the email subject or push title (empty for SMS)."""

    channel: Channel
    title: str
    body: str


@dataclass(frozen=True)
class Template:
    email_subject: str
    email_body: str
    sms: str
    push_title: str
    push_body: str


TEMPLATES: Mapping[str, Template] = {
    "application_received": Template(
        email_subject="We received your application for {job_title}",
        email_body=(
            "{greeting}\n\n"
            "Thank you for applying to {job_title}. "
            "We will let you know as soon as the employer reviews your application.\n\n"
            "The Jobstream team\n"
        ),
        sms="Jobstream: your application for {job_title} was received.",
        push_title="Application received",
        push_body="Your application for {job_title} was received.",
    ),
    "new_applicant": Template(
        email_subject="New applicant for {job_title}",
        email_body=(
            "{greeting}\n\nA new candidate applied to {job_title}. Review the application on Jobstream.\n\n"
            "The Jobstream team\n"
        ),
        sms="Jobstream: a new candidate applied to {job_title}.",
        push_title="New applicant",
        push_body="A new candidate applied to {job_title}.",
    ),
    "application_rejected": Template(
        email_subject="Your application for {job_title}",
        email_body=(
            "{greeting}\n\nYour application for {job_title} could not be accepted: {reason}.\n\nThe Jobstream team\n"
        ),
        sms="Jobstream: your application for {job_title} could not be accepted: {reason}.",
        push_title="Application not accepted",
        push_body="{job_title}: {reason}.",
    ),
    "stage_changed": Template(
        email_subject="Your application for {job_title} {stage_news}",
        email_body="{greeting}\n\nYour application for {job_title} {stage_news}.\n\nThe Jobstream team\n",
        sms="Jobstream: your application for {job_title} {stage_news}.",
        push_title="Application update",
        push_body="{job_title}: your application {stage_news}.",
    ),
    "welcome": Template(
        email_subject="Welcome to Jobstream, {name}",
        email_body="Hello {name},\n\nYour Jobstream account is ready.\n\nThe Jobstream team\n",
        sms="Welcome to Jobstream, {name}!",
        push_title="Welcome to Jobstream",
        push_body="Hello {name}, your account is ready.",
    ),
}

# What each pipeline stage (application.stage_changed) means to the candidate; an unknown one is named as is.
STAGE_NEWS: Mapping[str, str] = {
    "reviewed": "has been reviewed",
    "interview": "has moved to the interview stage",
    "offer": "has reached the offer stage",
    "hired": "has been marked hired: congratulations",
    "declined": "was declined by the employer",
}


def greeting(recipient_name: str | None) -> str:
    """The email's first line: with the recipient's name when there is one, neutral otherwise (never an id)."""
    name = (recipient_name or "").strip()
    return f"Hello {name}," if name else "Hello,"


def derived_params(params: Mapping[str, str]) -> dict[str, str]:
    """`params` with ``greeting`` (always) and ``stage_news`` (when a ``stage`` is given) filled in."""
    derived = {**params, "greeting": greeting(params.get("recipient_name"))}
    stage = params.get("stage")
    if stage is not None:
        derived["stage_news"] = STAGE_NEWS.get(stage, f"is now at the {stage} stage")
    return derived


def render(template_name: str, channel: Channel, params: Mapping[str, str]) -> Rendered:
    """Fill the named template for one channel; raises TemplateError naming what is missing."""
    template = TEMPLATES.get(template_name)
    if template is None:
        raise TemplateError(f"unknown template {template_name!r}; known: {', '.join(sorted(TEMPLATES))}")
    params = derived_params(params)
    if channel == "email":
        return Rendered(
            channel,
            _fill(template_name, template.email_subject, params),
            _fill(template_name, template.email_body, params),
        )
    if channel == "sms":
        return Rendered(channel, "", _fill(template_name, template.sms, params))
    if channel == "push":
        return Rendered(
            channel, _fill(template_name, template.push_title, params), _fill(template_name, template.push_body, params)
        )
    raise TemplateError(f"unknown channel {channel!r}; expected email, sms or push")


def _fill(template_name: str, text: str, params: Mapping[str, str]) -> str:
    needed = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    missing = sorted(needed - params.keys())
    if missing:
        raise TemplateError(f"template {template_name!r} needs params {', '.join(missing)}")
    return text.format_map(params)
