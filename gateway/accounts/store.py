"""Accounts in MySQL: users, refresh-token families and the outbox, each change one short transaction (a
registration by invitation consumes the invitation in the same one).

pymysql blocks, so every call runs on a thread pool as large as the connection pool (the hard cap): a slow database
holds those threads, never the event loop. Queries are parameterized; no value is ever formatted into SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pymysql
from pymysql.constants import ER
from pymysql.cursors import DictCursor

from gateway.accounts import invitation_store
from gateway.clients.mysql import GatewayMySQL
from gateway.http.principal import Role
from jobstream.clock import db_now, iso_ms
from jobstream.errors import JobstreamError

T = TypeVar("T")
_USER_COLUMNS = "user_id, email, role, company_id, display_name, created_at, updated_at"
# The collation of users.email (migration 0002): it decides which spellings of an email are one account.
EMAIL_COLLATION = "utf8mb4_unicode_ci"
# A space's weight in that collation: PAD SPACE comparison ignores trailing ones, so the key drops them too.
_SPACE_WEIGHT = b"\x02\x09"


class RefreshRefusedError(JobstreamError):
    """A refresh token cannot be exchanged; ``reused_family`` is set when it had been used before."""

    def __init__(self, code: str, message: str, *, reused_family: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reused_family = reused_family


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    role: Role
    company_id: str | None
    display_name: str
    created_at: datetime
    updated_at: datetime

    def profile(self) -> dict[str, Any]:
        """The user as the API shows it (no password hash, times in ISO 8601 UTC)."""
        return {
            "user_id": self.user_id,
            "email": self.email,
            "role": self.role.value,
            "company_id": self.company_id,
            "display_name": self.display_name,
            "created_at": iso_ms(self.created_at),
            "updated_at": iso_ms(self.updated_at),
        }


@dataclass(frozen=True)
class Credentials:
    """What a login looks up: the account and its password hash, if any, and `email_key`, equal for every spelling of
    the email that finds the same account (case, accents, ignorable characters), whether or not one exists."""

    email_key: bytes
    found: tuple[User, str] | None


@dataclass(frozen=True)
class RefreshGrant:
    """A refresh token to store: only its hash reaches the database."""

    token: str
    family_id: str
    issued_at: datetime
    expires_at: datetime

    @property
    def token_hash(self) -> bytes:
        return hash_refresh_token(self.token)


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes
    payload: bytes


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AccountStore:
    def __init__(self, mysql: GatewayMySQL) -> None:
        self._mysql = mysql

    async def create_user(
        self,
        user: User,
        password_hash: str,
        grant: RefreshGrant | None,
        event: OutboxMessage,
        invitation_id: str | None = None,
    ) -> bool:
        """The user, its first refresh token (none for an account an admin creates), the invitation it registers
        with, if any, consumed, and its outbox event, in one transaction; False if the email is taken.

        InvitationRefusedError (nothing written) if the invitation was used, revoked or expired meanwhile.
        """

        def work(cursor: DictCursor) -> bool:
            try:
                cursor.execute(
                    "INSERT INTO users (user_id, email, password_hash, role, company_id, display_name, created_at, "
                    "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        user.user_id,
                        user.email,
                        password_hash,
                        user.role.value,
                        user.company_id,
                        user.display_name,
                        user.created_at,
                        user.updated_at,
                    ),
                )
            except pymysql.IntegrityError as error:
                if error.args[0] == ER.DUP_ENTRY:
                    return False
                raise
            if invitation_id is not None:
                invitation_store.accept(cursor, invitation_id, user.user_id, user.created_at)
            if grant is not None:
                _insert_grant(cursor, grant, user.user_id)
            cursor.execute(
                "INSERT INTO outbox (topic, message_key, payload, created_at) VALUES (%s, %s, %s, %s)",
                (event.topic, event.key, event.payload, user.created_at),
            )
            return True

        return await self._run(work)

    async def credentials(self, email: str) -> Credentials:
        """The account `email` names (any spelling the column's collation equates), with its email's key."""

        def work(cursor: DictCursor) -> Credentials:
            # One round trip: the weights of `email` even when no row matches (hence the LEFT JOIN on a probe row).
            cursor.execute(
                f"SELECT WEIGHT_STRING(%s COLLATE {EMAIL_COLLATION}) AS email_weights, {_USER_COLUMNS}, password_hash "
                "FROM (SELECT 1) AS probe LEFT JOIN users ON users.email = %s",
                (email, email),
            )
            row = cursor.fetchone()
            found = None if row["user_id"] is None else (_user(row), row["password_hash"])
            return Credentials(_email_key(bytes(row["email_weights"])), found)

        return await self._run(work)

    async def user(self, user_id: str) -> User | None:
        def work(cursor: DictCursor) -> User | None:
            cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = %s", (user_id,))
            row = cursor.fetchone()
            return None if row is None else _user(row)

        return await self._run(work)

    async def update_display_name(
        self, user_id: str, display_name: str, event: Callable[[User], OutboxMessage]
    ) -> User | None:
        """The new name and `event(updated user)` in the outbox, in one transaction: consumers of the user's latest
        state (the notifications stage greets by display name) hear of the change."""

        def work(cursor: DictCursor) -> User | None:
            now = db_now()
            cursor.execute(
                "UPDATE users SET display_name = %s, updated_at = %s WHERE user_id = %s", (display_name, now, user_id)
            )
            cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = %s", (user_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            user = _user(row)
            message = event(user)
            cursor.execute(
                "INSERT INTO outbox (topic, message_key, payload, created_at) VALUES (%s, %s, %s, %s)",
                (message.topic, message.key, message.payload, now),
            )
            return user

        return await self._run(work)

    async def start_session(self, user_id: str, grant: RefreshGrant) -> None:
        await self._run(lambda cursor: _insert_grant(cursor, grant, user_id))

    async def rotate(
        self, presented: str, successor: str, issued_at: datetime, expires_at: datetime
    ) -> tuple[User, RefreshGrant]:
        """Use a refresh token once and store its `successor` in the same family; the user and the new grant.

        A token presented a second time means it leaked (or a client replayed it): the whole family is revoked,
        and RefreshRefusedError names it so the caller can revoke the access tokens issued in it too.
        """

        def work(cursor: DictCursor) -> tuple[User, RefreshGrant]:
            cursor.execute(
                "SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens "
                "WHERE token_hash = %s FOR UPDATE",
                (hash_refresh_token(presented),),
            )
            row = cursor.fetchone()
            if row is None:
                raise RefreshRefusedError("invalid_refresh_token", "the refresh token is not known")
            if row["revoked_at"] is not None:
                raise RefreshRefusedError("refresh_token_revoked", "the refresh token was revoked; log in again")
            if row["used_at"] is not None:
                _revoke_family(cursor, row["family_id"])
                cursor.connection.commit()
                raise RefreshRefusedError(
                    "refresh_token_reused",
                    "the refresh token was already used; its session is revoked, log in again",
                    reused_family=row["family_id"],
                )
            if row["expires_at"] <= issued_at:
                raise RefreshRefusedError("refresh_token_expired", "the refresh token has expired; log in again")
            cursor.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s",
                (issued_at, hash_refresh_token(presented)),
            )
            grant = RefreshGrant(successor, row["family_id"], issued_at, expires_at)
            _insert_grant(cursor, grant, row["user_id"])
            cursor.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = %s", (row["user_id"],))
            return _user(cursor.fetchone()), grant

        return await self._run(work)

    async def revoke_family(self, family_id: str) -> None:
        await self._run(lambda cursor: _revoke_family(cursor, family_id))

    async def _run(self, work: Callable[[DictCursor], T]) -> T:
        return await self._mysql.transaction(work)


def _insert_grant(cursor: DictCursor, grant: RefreshGrant, user_id: str) -> None:
    cursor.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        (grant.token_hash, grant.family_id, user_id, grant.issued_at, grant.expires_at),
    )


def _revoke_family(cursor: DictCursor, family_id: str) -> None:
    cursor.execute(
        "UPDATE refresh_tokens SET revoked_at = %s WHERE family_id = %s AND revoked_at IS NULL",
        (db_now(), family_id),
    )


def _user(row: dict[str, Any]) -> User:
    return User(
        user_id=row["user_id"],
        email=row["email"],
        role=Role(row["role"]),
        company_id=row["company_id"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _email_key(weights: bytes) -> bytes:
    while len(weights) % 2 == 0 and weights.endswith(_SPACE_WEIGHT):
        weights = weights[:-2]
    return weights
