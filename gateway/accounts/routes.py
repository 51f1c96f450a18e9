"""Accounts routes (the seed's User Service): register, login, refresh, logout and the caller's own profile.

Registration without an invitation creates candidates and employers only, and an employer's registration creates
a new company (a fresh company_id), so a client-chosen company_id or a privileged role is refused. With an
`invite_token` (see `gateway/accounts/invitations.py`) the role and company come from the invitation: that is how
an employer joins a colleague's company and how an analyst gets an account. Admins are made by an operator
(`python -m gateway.accounts.admin create-user`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accounts.invitation_store import Invitation, InvitationRefusedError, InvitationStore
from gateway.accounts.passwords import PasswordHashing
from gateway.accounts.profiles import ProfileCache
from gateway.accounts.store import AccountStore, OutboxMessage, RefreshGrant, RefreshRefusedError, User
from gateway.accounts.tokens import RevocationUnavailableError, TokenService
from gateway.http.errors import ApiError, InvalidField, Unavailable
from gateway.http.guards import require_role
from gateway.http.principal import Role
from gateway.http.validation import Choice, Field, Text, check_object, read_json, uuid_param
from gateway.middleware.ratelimit import Rate, RateLimiter
from jobstream.clock import db_now, epoch_ms
from jobstream.settings import AccountSettings
from schemas.avro import EventSchema
from schemas.topics import USER_REGISTERED

_MAX_BODY_BYTES = 8_192
_EMAIL = re.compile(
    r"^[^@\s]{1,64}@(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Email:
    def check(self, name: str, value: Any) -> str:
        text = Text(3, 254, multiline=False).check(name, value)
        if not text.isprintable() or not _EMAIL.match(text):
            raise InvalidField(name, "must be an email address like ada@example.com")
        return text.lower()

    def json_schema(self) -> dict[str, Any]:
        return {**Text(3, 254, multiline=False).json_schema(), "format": "email"}


@dataclass(frozen=True)
class _DisplayName:
    def check(self, name: str, value: Any) -> str:
        text = Text(1, 100, multiline=False).check(name, value).strip()
        if not text:
            raise InvalidField(name, "must not be blank")
        if not text.isprintable():
            raise InvalidField(name, "must not contain control characters")
        return text

    def json_schema(self) -> dict[str, Any]:
        return {**Text(1, 100, multiline=False).json_schema(), "description": "one line, not blank"}


@dataclass(frozen=True)
class _Uuid:
    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidField(name, "must be a string")
        return uuid_param(value, name)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "format": "uuid",
            "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        }


# role analyst and company_id only with an invite_token, and then equal to the invitation's (or left out).
REGISTER_FIELDS = {
    "email": Field(_Email()),
    "password": Field(Text(12, 128, multiline=False)),
    "display_name": Field(_DisplayName()),
    "role": Field(Choice((Role.CANDIDATE.value, Role.EMPLOYER.value, Role.ANALYST.value)), required=False),
    "company_id": Field(_Uuid(), required=False),
    "invite_token": Field(Text(1, 200, multiline=False), required=False),
}
# A used invitation is a conflict with what exists (the account); a revoked or expired one is gone for good.
_INVITATION_STATUS = {"invitation_used": 409, "invitation_revoked": 410, "invitation_expired": 410}
LOGIN_FIELDS = {"email": Field(Text(1, 254, multiline=False)), "password": Field(Text(1, 128, multiline=False))}
REFRESH_FIELDS = {"refresh_token": Field(Text(1, 200, multiline=False))}
PROFILE_FIELDS = {"display_name": Field(_DisplayName())}


class Accounts:
    def __init__(
        self,
        *,
        store: AccountStore,
        invitations: InvitationStore,
        tokens: TokenService,
        passwords: PasswordHashing,
        profiles: ProfileCache,
        limiter: RateLimiter,
        settings: AccountSettings,
        user_registered: EventSchema,
    ) -> None:
        self._store = store
        self._invitations = invitations
        self._tokens = tokens
        self._passwords = passwords
        self._profiles = profiles
        self._limiter = limiter
        self._refresh_ttl = timedelta(seconds=settings.refresh_token_ttl_s)
        # GCRA: bursts of up to N attempts, refilled at N per window.
        self._account_rate = _rate(settings.login_max_attempts_per_account, settings.login_window_s)
        self._ip_rate = _rate(settings.login_max_attempts_per_ip, settings.login_window_s)
        self._user_registered = user_registered

    async def register(self, request: Request) -> Response:
        body = await read_json(request, _MAX_BODY_BYTES)
        if isinstance(body, dict) and "invite_token" not in body:
            _refuse_privileged_registration(body)
        fields = check_object(body, REGISTER_FIELDS)
        now = db_now()
        invitation = await self._invitation(fields, now) if "invite_token" in fields else None
        if invitation is None:
            role = Role(fields.get("role", Role.CANDIDATE.value))
            company_id = str(uuid.uuid4()) if role is Role.EMPLOYER else None
        else:
            role, company_id = invitation.role, invitation.company_id
        user = User(
            user_id=str(uuid.uuid4()),
            email=fields["email"],
            role=role,
            company_id=company_id,
            display_name=fields["display_name"],
            created_at=now,
            updated_at=now,
        )
        password_hash = await self._passwords.hash(fields["password"])
        grant = self._grant(now, family_id=str(uuid.uuid4()))
        event = registered_event(user, self._user_registered)
        try:
            created = await self._store.create_user(
                user, password_hash, grant, event, invitation.invitation_id if invitation else None
            )
        except InvitationRefusedError as refused:
            raise _invitation_refused(refused) from None
        if not created:
            raise ApiError(409, "email_taken", "an account with this email exists; log in instead", field="email")
        await self._profiles.put(user.profile())
        return JSONResponse(self._session(user, grant), status_code=201)

    async def login(self, request: Request) -> Response:
        fields = check_object(await read_json(request, _MAX_BODY_BYTES), LOGIN_FIELDS)
        email = fields["email"].strip().lower()
        ip = request.client.host if request.client else "unknown"
        # The address first, before any MySQL work; then the account, keyed on what the lookup finds.
        await self._limit_login("login-ip", ip, self._ip_rate, "from this address")
        credentials = await self._store.credentials(email)
        found = credentials.found
        # Every spelling of one email (case, accents, ignorable characters) shares one budget: the account's when
        # the email resolves to one, else that of the email's collation weights, the lookup's own normal form.
        account = f"user:{found[0].user_id}".encode() if found else b"email:" + credentials.email_key
        await self._limit_login(
            "login-account", hashlib.sha256(account).hexdigest()[:32], self._account_rate, "for this account"
        )
        matched = await self._passwords.verify(found[1] if found else None, fields["password"])
        if found is None or not matched:
            raise ApiError(401, "invalid_credentials", "the email or the password is wrong")
        user = found[0]
        grant = self._grant(db_now(), family_id=str(uuid.uuid4()))
        await self._store.start_session(user.user_id, grant)
        return JSONResponse(self._session(user, grant))

    async def refresh(self, request: Request) -> Response:
        fields = check_object(await read_json(request, _MAX_BODY_BYTES), REFRESH_FIELDS)
        now = db_now()
        try:
            user, grant = await self._store.rotate(
                fields["refresh_token"], secrets.token_urlsafe(32), now, now + self._refresh_ttl
            )
        except RefreshRefusedError as refused:
            if refused.reused_family is not None:
                await self._revoke_session(refused.reused_family)
            raise ApiError(401, refused.code, refused.message, field="refresh_token") from None
        return JSONResponse(self._session(user, grant))

    async def logout(self, request: Request) -> Response:
        """Revokes this access token, every other token of its session, and the session's refresh tokens."""
        require_role(request, *Role)
        claims = self._tokens.decode(request.headers["authorization"].partition(" ")[2].strip())
        await self._store.revoke_family(claims.session_id)
        try:
            await self._tokens.revoke(claims)
        except RevocationUnavailableError:
            raise Unavailable("auth_unavailable", "logout cannot be recorded right now; retry shortly", 1) from None
        await self._revoke_session(claims.session_id)
        return Response(status_code=204)

    async def profile(self, request: Request) -> Response:
        principal = require_role(request, *Role)
        profile = await self._profiles.get(principal.user_id)
        if profile is None:
            user = await self._store.user(principal.user_id)
            if user is None:
                raise ApiError(404, "not_found", "this account no longer exists")
            profile = user.profile()
            await self._profiles.put(profile)
        return JSONResponse(profile)

    async def update_profile(self, request: Request) -> Response:
        principal = require_role(request, *Role)
        fields = check_object(await read_json(request, _MAX_BODY_BYTES), PROFILE_FIELDS, partial=True)
        user = await self._store.update_display_name(
            principal.user_id, fields["display_name"], lambda updated: registered_event(updated, self._user_registered)
        )
        if user is None:
            raise ApiError(404, "not_found", "this account no longer exists")
        await self._profiles.put(user.profile())
        return JSONResponse(user.profile())

    def routes(self) -> list[Route]:
        return [
            Route("/v1/auth/register", self.register, methods=["POST"]),
            Route("/v1/auth/login", self.login, methods=["POST"]),
            Route("/v1/auth/refresh", self.refresh, methods=["POST"]),
            Route("/v1/auth/logout", self.logout, methods=["POST"]),
            Route("/v1/me", self.profile, methods=["GET"]),
            Route("/v1/me", self.update_profile, methods=["PATCH"]),
        ]

    async def _invitation(self, fields: dict[str, Any], now: datetime) -> Invitation:
        """The invitation `fields` register with, if it can be used with them; checked again, locked, when the
        account is written, so a concurrent use or revocation still wins."""
        invitation = await self._invitations.find(fields["invite_token"])
        if invitation is None:
            raise InvalidField(
                "invite_token",
                "is not a known invitation; copy it whole from the invitation",
                code="invitation_unknown",
            )
        refusal = invitation.refusal(now)
        if refusal is not None:
            raise _invitation_refused(refusal)
        if fields["email"] != invitation.email:
            raise InvalidField(
                "email",
                "is not the address this invitation was sent to; register with that address",
                code="invitation_email_mismatch",
            )
        if fields.get("role", invitation.role.value) != invitation.role.value:
            raise InvalidField(
                "role",
                f"contradicts the invitation, which is for an {invitation.role.value}; leave role out",
                code="invitation_role_mismatch",
            )
        if fields.get("company_id", invitation.company_id) != invitation.company_id:
            raise InvalidField(
                "company_id",
                "contradicts the invitation, which names the company to join; leave company_id out",
                code="invitation_company_mismatch",
            )
        return invitation

    def _grant(self, now: datetime, family_id: str) -> RefreshGrant:
        return RefreshGrant(secrets.token_urlsafe(32), family_id, now, now + self._refresh_ttl)

    def _session(self, user: User, grant: RefreshGrant) -> dict[str, Any]:
        access = self._tokens.issue(user.user_id, user.role, user.company_id, grant.family_id)
        return {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": access.expires_in,
            "refresh_token": grant.token,
            "refresh_expires_in": int(self._refresh_ttl.total_seconds()),
            "user": user.profile(),
        }

    async def _limit_login(self, kind: str, identity: str, rate: Rate, whose: str) -> None:
        verdict = await self._limiter.check([(f"{kind}:{identity}", rate)])
        if not verdict.allowed:
            headers = verdict.headers()
            raise ApiError(
                429,
                "rate_limited",
                f"too many login attempts {whose}; retry in {headers['Retry-After']} s",
                headers=headers,
            )

    async def _revoke_session(self, session_id: str) -> None:
        try:
            await self._tokens.revoke_session(session_id)
        except RevocationUnavailableError:
            raise Unavailable("auth_unavailable", "the session cannot be revoked right now; retry shortly", 1) from None


def _refuse_privileged_registration(body: dict[str, Any]) -> None:
    """Without an invitation: no existing company to join, no analyst or admin role."""
    if "company_id" in body:
        raise InvalidField(
            "company_id",
            "is given by an invitation: to join an existing company, register with the invite_token one of its "
            "employers (or an admin) sent you; without one, each employer account gets a new company",
        )
    if body.get("role") == Role.ANALYST.value:
        raise InvalidField(
            "role",
            "analyst accounts need an invitation: register with the invite_token an admin sent you; else register "
            "as candidate or employer",
        )
    if body.get("role") == Role.ADMIN.value:
        raise InvalidField(
            "role",
            "admin accounts are created by an operator (python -m gateway.accounts.admin create-user); register as "
            "candidate or employer",
        )


def _invitation_refused(refused: InvitationRefusedError) -> ApiError:
    return ApiError(_INVITATION_STATUS[refused.code], refused.code, refused.message, field="invite_token")


def _rate(attempts: int, window_s: int) -> Rate:
    return Rate(per_minute=max(1, round(attempts * 60 / window_s)), burst=attempts)


def registered_event(user: User, schema: EventSchema) -> OutboxMessage:
    """`user.registered` for `user`, as the outbox relay will publish it: on registration and again, the whole
    account as it now is (registered_at unchanged), after each display name change."""
    record = {
        "event_id": str(uuid.uuid4()),
        "user_id": user.user_id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role.value,
        "company_id": user.company_id,
        "registered_at": epoch_ms(user.created_at),
    }
    return OutboxMessage(USER_REGISTERED, user.user_id.encode(), schema.encode(record))
