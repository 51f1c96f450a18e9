"""`python -m gateway.accounts.admin`: accounts and invitations for the operator of a deployment.

`create-user` creates an account of any role; it is the only way to the first admin (admins invite analysts and
employers over HTTP afterwards). The password is read from standard input (prompted twice on a terminal), never
from the command line, where `ps` would show it. The account is written like a registration: the user row and
its `user.registered` outbox event in one transaction, checked by the same field rules.

`invite` makes an invitation as an admin would over HTTP (`POST /v1/invitations`), with the same store code, and
prints it with its `invite_token`, shown this once; the invitee registers with it over HTTP.

Exit status: 0 done (the profile or the invitation is printed as JSON), 1 the email is taken, the company unknown
or MySQL cannot be reached, 2 an invalid argument (the message names it).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TextIO

import pymysql
from argon2 import PasswordHasher

from gateway.accounts.invitation_store import InvitationStore, new_invitation
from gateway.accounts.routes import REGISTER_FIELDS, registered_event
from gateway.accounts.store import AccountStore, User
from gateway.clients.mysql import GatewayMySQL
from gateway.http.errors import InvalidField
from gateway.http.principal import Role
from gateway.http.validation import uuid_param
from jobstream.breaker import CircuitBreaker
from jobstream.clock import db_now
from jobstream.errors import JobstreamError
from jobstream.settings import Settings
from schemas import load_event_schemas


class AdminError(JobstreamError):
    """The account cannot be created; `status` is the exit status to leave with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def new_user(email: str, display_name: str, role: Role, company_id: str | None) -> User:
    """The account the arguments describe, checked by the registration rules; AdminError (status 2) if not."""
    try:
        email = REGISTER_FIELDS["email"].spec.check("email", email)
        display_name = REGISTER_FIELDS["display_name"].spec.check("display_name", display_name)
        if company_id is not None:
            company_id = uuid_param(company_id, "company_id")
    except InvalidField as error:
        raise AdminError(f"--{(error.field or '').replace('_', '-')}: {error.message}", 2) from None
    if role is Role.EMPLOYER:
        company_id = company_id or str(uuid.uuid4())
    elif company_id is not None:
        raise AdminError(f"--company-id: only an employer belongs to a company, not an {role.value}", 2)
    now = db_now()
    return User(str(uuid.uuid4()), email, role, company_id, display_name, now, now)


def read_password(stdin: TextIO) -> str:
    """The password from `stdin`: asked twice on a terminal, else its first line; checked like a registration."""
    if stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise AdminError("the two passwords differ", 2)
    else:
        password = stdin.readline().rstrip("\r\n")
    try:
        return str(REGISTER_FIELDS["password"].spec.check("password", password))
    except InvalidField as error:
        raise AdminError(f"password: {error.message}", 2) from None


@asynccontextmanager
async def _mysql(settings: Settings) -> AsyncIterator[GatewayMySQL]:
    """One connection; a MySQL failure inside becomes AdminError (status 1) naming the server."""
    breaker = CircuitBreaker(
        "mysql", failures=1, reset_s=1, errors=(pymysql.OperationalError, pymysql.InterfaceError, OSError)
    )
    mysql = GatewayMySQL(settings.mysql, 1, breaker)
    try:
        yield mysql
    except AdminError:
        raise
    except JobstreamError as error:
        raise AdminError(f"MySQL at {settings.mysql.host}:{settings.mysql.port}: {error}", 1) from None
    finally:
        await asyncio.to_thread(mysql.close)


async def create_user(settings: Settings, user: User, password: str) -> None:
    """Write `user` and its `user.registered` event; AdminError (status 1) if the email is taken or MySQL is down."""
    event = registered_event(user, load_event_schemas()["user_registered"])
    password_hash = await asyncio.to_thread(PasswordHasher().hash, password)
    async with _mysql(settings) as mysql:
        if not await AccountStore(mysql).create_user(user, password_hash, None, event):
            raise AdminError(f"an account with the email {user.email} exists", 1)


async def invite(settings: Settings, email: str, role: Role, company_id: str | None) -> dict[str, Any]:
    """An invitation for `email` (an employer joins `company_id`, which must exist, or a new company), with its
    token; AdminError (status 1) if the email has an account, the company is unknown or MySQL is down."""
    try:
        email = REGISTER_FIELDS["email"].spec.check("email", email)
        if company_id is not None:
            company_id = uuid_param(company_id, "company_id")
    except InvalidField as error:
        raise AdminError(f"--{(error.field or '').replace('_', '-')}: {error.message}", 2) from None
    if role is Role.ANALYST and company_id is not None:
        raise AdminError("--company-id: only an employer belongs to a company, not an analyst", 2)
    async with _mysql(settings) as mysql:
        store = InvitationStore(mysql)
        if role is Role.EMPLOYER:
            if company_id is None:
                company_id = str(uuid.uuid4())
            elif not await store.company_exists(company_id):
                raise AdminError(f"no employer belongs to the company {company_id}", 1)
        ttl = timedelta(seconds=settings.accounts.invitation_ttl_s)
        invitation, token = new_invitation(email, role, company_id, None, db_now(), ttl)
        if not await store.create(invitation, token):
            raise AdminError(f"an account with the email {email} exists", 1)
    return {**invitation.public(), "invite_token": token}


def main(argv: Sequence[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.accounts.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create an account; the password is read from stdin")
    create.add_argument("--email", required=True)
    create.add_argument("--display-name", required=True)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--company-id", help="employers only: the company to join (default: a new company)")
    invitation = commands.add_parser("invite", help="invite an analyst or employer; prints the invite token once")
    invitation.add_argument("--email", required=True)
    invitation.add_argument("--role", required=True, choices=[Role.ANALYST.value, Role.EMPLOYER.value])
    invitation.add_argument("--company-id", help="employers only: the company to join (default: a new company)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(identity="gateway")
        if args.command == "invite":
            printed = asyncio.run(invite(settings, args.email, Role(args.role), args.company_id))
        else:
            user = new_user(args.email, args.display_name, Role(args.role), args.company_id)
            password = read_password(stdin)
            asyncio.run(create_user(settings, user, password))
            printed = user.profile()
    except AdminError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.status
    except JobstreamError as error:  # a setting the environment holds wrong
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(printed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
