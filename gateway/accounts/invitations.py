"""Invitation routes: an employer invites colleagues to its company; an admin invites analysts and employers.

`POST` answers the invitation with its `invite_token`, shown this once (only its hash is stored); the invitee
registers with it (`POST /v1/auth/register`), which uses it up. An employer sees, sends and revokes only its own
company's invitations (403 for another's); an admin those of any existing company (404 for an unknown one).
Each inviter's invitations are rate-limited, so a stolen employer token cannot mail-bomb through them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accounts.invitation_store import InvitationStore, new_invitation
from gateway.accounts.routes import REGISTER_FIELDS
from gateway.http.errors import ApiError, InvalidField
from gateway.http.guards import page_params, require_role
from gateway.http.principal import Principal, Role
from gateway.http.validation import Choice, Field, check_object, read_json, uuid_param
from gateway.middleware.ratelimit import Rate, RateLimiter
from jobstream.clock import db_now
from jobstream.settings import AccountSettings

_MAX_BODY_BYTES = 8_192
# The invitee's email follows the registration's rule, so every invitation can be registered with.
COMPANY_INVITE_FIELDS = {
    "email": REGISTER_FIELDS["email"],
    "role": Field(Choice((Role.EMPLOYER.value,)), required=False),
}
# company_id for an employer only: an existing company, or left out for a new one.
ADMIN_INVITE_FIELDS = {
    "email": REGISTER_FIELDS["email"],
    "role": Field(Choice((Role.ANALYST.value, Role.EMPLOYER.value))),
    "company_id": REGISTER_FIELDS["company_id"],
}


class InvitationRoutes:
    def __init__(self, store: InvitationStore, limiter: RateLimiter, settings: AccountSettings) -> None:
        self._store = store
        self._limiter = limiter
        self._ttl = timedelta(seconds=settings.invitation_ttl_s)
        self._rate = Rate(per_minute=settings.invite_rate_per_min, burst=settings.invite_burst)

    async def invite_to_company(self, request: Request) -> Response:
        principal = require_role(request, Role.EMPLOYER, Role.ADMIN)
        company_id = await self._company(request, principal)
        fields = check_object(await read_json(request, _MAX_BODY_BYTES), COMPANY_INVITE_FIELDS)
        return await self._invite(principal, fields["email"], Role.EMPLOYER, company_id)

    async def invite(self, request: Request) -> Response:
        principal = require_role(request, Role.ADMIN)
        fields = check_object(await read_json(request, _MAX_BODY_BYTES), ADMIN_INVITE_FIELDS)
        role = Role(fields["role"])
        company_id = fields.get("company_id")
        if role is Role.ANALYST and company_id is not None:
            raise InvalidField("company_id", "only an employer belongs to a company; leave it out for an analyst")
        if role is Role.EMPLOYER:
            if company_id is None:
                company_id = str(uuid.uuid4())
            elif not await self._store.company_exists(company_id):
                raise _unknown_company(field="company_id")
        return await self._invite(principal, fields["email"], role, company_id)

    async def pending(self, request: Request) -> Response:
        principal = require_role(request, Role.EMPLOYER, Role.ADMIN)
        company_id = await self._company(request, principal)
        limit, offset = page_params(request)
        found = await self._store.pending(company_id, db_now(), limit, offset)
        items = [invitation.public() for invitation in found]
        return JSONResponse({"company_id": company_id, "items": items, "limit": limit, "offset": offset})

    async def revoke(self, request: Request) -> Response:
        principal = require_role(request, Role.EMPLOYER, Role.ADMIN)
        company_id = await self._company(request, principal)
        invitation_id = uuid_param(request.path_params["invitation_id"], "invitation_id")
        found = await self._store.revoke(company_id, invitation_id, db_now())
        if found is None:
            raise ApiError(404, "not_found", "this company has no such invitation", field="invitation_id")
        if found.accepted_at is not None:
            raise ApiError(409, "invitation_used", "this invitation was already used; it can no longer be revoked")
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/companies/{company_id}/invitations", self.invite_to_company, methods=["POST"]),
            Route("/v1/companies/{company_id}/invitations", self.pending, methods=["GET"]),
            Route("/v1/companies/{company_id}/invitations/{invitation_id}", self.revoke, methods=["DELETE"]),
            Route("/v1/invitations", self.invite, methods=["POST"]),
        ]

    async def _company(self, request: Request, principal: Principal) -> str:
        """The path's company, if `principal` may manage its invitations: an employer its own, an admin any."""
        company_id = uuid_param(request.path_params["company_id"], "company_id")
        if principal.role is Role.EMPLOYER:
            if principal.company_id != company_id:
                raise ApiError(403, "forbidden", "employers manage only their own company's invitations")
        elif not await self._store.company_exists(company_id):
            raise _unknown_company(field=None)
        return company_id

    async def _invite(self, principal: Principal, email: str, role: Role, company_id: str | None) -> Response:
        verdict = await self._limiter.check([(f"invite:{principal.user_id}", self._rate)])
        if not verdict.allowed:
            headers = verdict.headers()
            raise ApiError(
                429, "rate_limited", f"too many invitations; retry in {headers['Retry-After']} s", headers=headers
            )
        invitation, token = new_invitation(email, role, company_id, principal.user_id, db_now(), self._ttl)
        if not await self._store.create(invitation, token):
            raise ApiError(
                409, "email_taken", "an account with this email exists; it needs no invitation", field="email"
            )
        return JSONResponse({**invitation.public(), "invite_token": token}, status_code=201)


def _unknown_company(field: str | None) -> ApiError:
    return ApiError(404, "company_not_found", "no employer belongs to this company", field=field)
