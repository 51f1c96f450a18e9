"""`python -m gateway.accounts.admin create-user`: create an account of any role, for the operator of a deployment.

Registration over HTTP makes candidates and employers only; analysts and admins (and employers who join an
existing company) are created here. The password is read from standard input (prompted twice on a terminal),
never from the command line, where `ps` would show it. The account is written like a registration: the user row
and its `user.registered` outbox event in one transaction, checked by the same field rules.

Exit status: 0 created (the profile is printed as JSON), 1 the email is taken or MySQL cannot be reached,
2 an invalid argument (the message names it).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import uuid
from collections.abc import Sequence
from typing import TextIO

import pymysql
from argon2 import PasswordHasher

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


async def create_user(settings: Settings, user: User, password: str) -> None:
    """Write `user` and its `user.registered` event; AdminError (status 1) if the email is taken or MySQL is down."""
    breaker = CircuitBreaker(
        "mysql", failures=1, reset_s=1, errors=(pymysql.OperationalError, pymysql.InterfaceError, OSError)
    )
    mysql = GatewayMySQL(settings.mysql, 1, breaker)
    try:
        event = registered_event(user, load_event_schemas()["user_registered"])
        password_hash = await asyncio.to_thread(PasswordHasher().hash, password)
        try:
            created = await AccountStore(mysql).create_user(user, password_hash, None, event)
        except JobstreamError as error:
            raise AdminError(f"MySQL at {settings.mysql.host}:{settings.mysql.port}: {error}", 1) from None
        if not created:
            raise AdminError(f"an account with the email {user.email} exists", 1)
    finally:
        await asyncio.to_thread(mysql.close)


def main(argv: Sequence[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.accounts.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create an account; the password is read from stdin")
    create.add_argument("--email", required=True)
    create.add_argument("--display-name", required=True)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--company-id", help="employers only: the company to join (default: a new company)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        user = new_user(args.email, args.display_name, Role(args.role), args.company_id)
        password = read_password(stdin)
        asyncio.run(create_user(settings, user, password))
    except AdminError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.status
    except JobstreamError as error:  # a setting the environment holds wrong
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(user.profile()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
