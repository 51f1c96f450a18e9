"""Who is calling: what the authentication backend puts on ``request.user`` for every route to check."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from starlette.authentication import BaseUser


class Role(StrEnum):
    CANDIDATE = "candidate"
    EMPLOYER = "employer"
    ANALYST = "analyst"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal(BaseUser):
    user_id: str
    role: Role
    # Set for employers: the company whose jobs they may act on.
    company_id: str | None
    # The access token's id, so logout can revoke exactly this token.
    token_id: str

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user_id

    @property
    def identity(self) -> str:
        return self.user_id
