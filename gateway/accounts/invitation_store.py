"""Invitations in MySQL: who may register as an employer of a company, or as an analyst, with a single-use token.

Only the token's SHA-256 is stored, as for refresh tokens: the token is shown once, to whoever invited. A
registration consumes its invitation with `accept`, inside the transaction that writes the user (see
`AccountStore.create_user`), so an invitation is used at most once and never without its account.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymysql.cursors import DictCursor

from gateway.clients.mysql import GatewayMySQL
from gateway.http.principal import Role
from jobstream.clock import iso_ms
from jobstream.errors import JobstreamError

_COLUMNS = (
    "invitation_id, email, role, company_id, invited_by, created_at, expires_at, accepted_at, accepted_by, revoked_at"
)
# The reads, named so tests/state/test_invitation_indexes.py can EXPLAIN exactly these.
COMPANY_EXISTS_SQL = "SELECT 1 FROM users WHERE company_id = %s AND role = 'employer' LIMIT 1"
BY_TOKEN_SQL = f"SELECT {_COLUMNS} FROM invitations WHERE token_hash = %s"
PENDING_SQL = (
    f"SELECT {_COLUMNS} FROM invitations WHERE company_id = %s AND accepted_at IS NULL AND revoked_at IS NULL "
    "AND expires_at > %s ORDER BY created_at DESC LIMIT %s OFFSET %s"
)


class InvitationRefusedError(JobstreamError):
    """An invitation cannot be used: ``code`` is ``invitation_used``, ``invitation_revoked`` or
    ``invitation_expired``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    email: str
    role: Role
    company_id: str | None
    invited_by: str | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    accepted_by: str | None = None
    revoked_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """The invitation as the API lists it: never its token (only its hash is stored)."""
        return {
            "invitation_id": self.invitation_id,
            "email": self.email,
            "role": self.role.value,
            "company_id": self.company_id,
            "invited_by": self.invited_by,
            "created_at": iso_ms(self.created_at),
            "expires_at": iso_ms(self.expires_at),
        }

    def refusal(self, now: datetime) -> InvitationRefusedError | None:
        """Why the invitation cannot be used at `now`, or None if it can."""
        if self.accepted_at is not None:
            return InvitationRefusedError("invitation_used", "this invitation was already used; log in instead")
        if self.revoked_at is not None:
            return InvitationRefusedError("invitation_revoked", "this invitation was revoked; ask for a new one")
        if self.expires_at <= now:
            return InvitationRefusedError("invitation_expired", "this invitation has expired; ask for a new one")
        return None


def new_invitation(
    email: str, role: Role, company_id: str | None, invited_by: str | None, now: datetime, ttl: timedelta
) -> tuple[Invitation, str]:
    """An invitation valid from `now` for `ttl`, and its token: 256 random bits, to be shown once."""
    invitation = Invitation(str(uuid.uuid4()), email, role, company_id, invited_by, now, now + ttl)
    return invitation, secrets.token_urlsafe(32)


def hash_invite_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class InvitationStore:
    def __init__(self, mysql: GatewayMySQL) -> None:
        self._mysql = mysql

    async def company_exists(self, company_id: str) -> bool:
        """A company exists while an employer belongs to it (there is no companies table)."""

        def query(cursor: DictCursor) -> bool:
            cursor.execute(COMPANY_EXISTS_SQL, (company_id,))
            return cursor.fetchone() is not None

        return await self._mysql.read(query)

    async def create(self, invitation: Invitation, token: str) -> bool:
        """Store `invitation` under the hash of `token`; False if an account already has its email."""

        def work(cursor: DictCursor) -> bool:
            cursor.execute("SELECT 1 FROM users WHERE email = %s", (invitation.email,))
            if cursor.fetchone() is not None:
                return False
            cursor.execute(
                "INSERT INTO invitations (invitation_id, token_hash, email, role, company_id, invited_by, created_at, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    invitation.invitation_id,
                    hash_invite_token(token),
                    invitation.email,
                    invitation.role.value,
                    invitation.company_id,
                    invitation.invited_by,
                    invitation.created_at,
                    invitation.expires_at,
                ),
            )
            return True

        return await self._mysql.transaction(work)

    async def find(self, token: str) -> Invitation | None:
        """The invitation `token` was issued for, whatever its state."""

        def query(cursor: DictCursor) -> Invitation | None:
            cursor.execute(BY_TOKEN_SQL, (hash_invite_token(token),))
            row = cursor.fetchone()
            return None if row is None else _invitation(row)

        return await self._mysql.read(query)

    async def pending(self, company_id: str, now: datetime, limit: int, offset: int) -> list[Invitation]:
        """The company's invitations neither used, revoked nor expired at `now`, newest first."""

        def query(cursor: DictCursor) -> list[Invitation]:
            cursor.execute(PENDING_SQL, (company_id, now, limit, offset))
            return [_invitation(row) for row in cursor.fetchall()]

        return await self._mysql.read(query)

    async def revoke(self, company_id: str, invitation_id: str, now: datetime) -> Invitation | None:
        """Revoke one of the company's invitations unless it was used; the invitation as it was before, or None if
        the company has no such invitation. Revoking twice changes nothing."""

        def work(cursor: DictCursor) -> Invitation | None:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM invitations WHERE invitation_id = %s AND company_id = %s FOR UPDATE",
                (invitation_id, company_id),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            found = _invitation(row)
            if found.accepted_at is None and found.revoked_at is None:
                cursor.execute("UPDATE invitations SET revoked_at = %s WHERE invitation_id = %s", (now, invitation_id))
            return found

        return await self._mysql.transaction(work)


def accept(cursor: DictCursor, invitation_id: str, user_id: str, now: datetime) -> None:
    """Use the invitation for `user_id` inside the caller's transaction; InvitationRefusedError (so the caller's
    transaction rolls back) if it was used, revoked or expired since it was read."""
    cursor.execute(f"SELECT {_COLUMNS} FROM invitations WHERE invitation_id = %s FOR UPDATE", (invitation_id,))
    row = cursor.fetchone()
    if row is None:
        raise InvitationRefusedError("invitation_revoked", "this invitation no longer exists; ask for a new one")
    refusal = _invitation(row).refusal(now)
    if refusal is not None:
        raise refusal
    cursor.execute(
        "UPDATE invitations SET accepted_at = %s, accepted_by = %s WHERE invitation_id = %s",
        (now, user_id, invitation_id),
    )


def _invitation(row: dict[str, Any]) -> Invitation:
    return Invitation(
        invitation_id=row["invitation_id"],
        email=row["email"],
        role=Role(row["role"]),
        company_id=row["company_id"],
        invited_by=row["invited_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        accepted_at=row["accepted_at"],
        accepted_by=row["accepted_by"],
        revoked_at=row["revoked_at"],
    )
