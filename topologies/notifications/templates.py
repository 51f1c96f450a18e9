"""The notification templates the platform sends, rendered per channel from a request's params.

Each template has an email subject and body, an SMS text and a push title and body, written with
``{param}`` placeholders. A missing param or an unknown template is a ``TemplateError``: retrying cannot fix it.
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
            "Hello {candidate_name},\n\n"
            "Thank you for applying to {job_title} at {company_name}. "
            "We will let you know as soon as the employer reviews your application.\n\n"
            "The Jobstream team\n"
        ),
        sms="Jobstream: your application for {job_title} at {company_name} was received.",
        push_title="Application received",
        push_body="Your application for {job_title} at {company_name} was received.",
    ),
    "new_applicant": Template(
        email_subject="New applicant for {job_title}",
        email_body=(
            "Hello {employer_name},\n\n"
            "{candidate_name} applied to {job_title}. Review the application on Jobstream.\n\n"
            "The Jobstream team\n"
        ),
        sms="Jobstream: {candidate_name} applied to {job_title}.",
        push_title="New applicant",
        push_body="{candidate_name} applied to {job_title}.",
    ),
    "application_rejected": Template(
        email_subject="Your application for {job_title}",
        email_body=(
            "Hello {candidate_name},\n\n"
            "Your application for {job_title} at {company_name} could not be accepted: {reason}.\n\n"
            "The Jobstream team\n"
        ),
        sms="Jobstream: your application for {job_title} could not be accepted: {reason}.",
        push_title="Application not accepted",
        push_body="{job_title}: {reason}.",
    ),
    "stage_changed": Template(
        email_subject="Your application for {job_title} moved to {stage}",
        email_body=(
            "Hello {candidate_name},\n\n"
            "Your application for {job_title} at {company_name} is now at the {stage} stage.\n\n"
            "The Jobstream team\n"
        ),
        sms="Jobstream: your application for {job_title} is now at the {stage} stage.",
        push_title="Application update",
        push_body="{job_title}: now at the {stage} stage.",
    ),
    "welcome": Template(
        email_subject="Welcome to Jobstream, {name}",
        email_body="Hello {name},\n\nYour Jobstream account is ready.\n\nThe Jobstream team\n",
        sms="Welcome to Jobstream, {name}!",
        push_title="Welcome to Jobstream",
        push_body="Hello {name}, your account is ready.",
    ),
}


def render(template_name: str, channel: Channel, params: Mapping[str, str]) -> Rendered:
    """Fill the named template for one channel; raises TemplateError naming what is missing."""
    template = TEMPLATES.get(template_name)
    if template is None:
        raise TemplateError(f"unknown template {template_name!r}; known: {', '.join(sorted(TEMPLATES))}")
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
