"""Short-lived access tokens: JWTs signed with one Ed25519 key (EdDSA), revocable through a Redis blacklist.

Verification accepts EdDSA only, whatever the token's header claims, so ``alg: none`` and HS256 signed with the
public key are refused. A token is revoked by its ``jti`` (logout) or by its ``sid``, the refresh-token family it
was issued in (logout, refresh-token reuse), each blacklisted only as long as a token could still be valid.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from redis.exceptions import RedisError

from gateway.accounts.keys import load_signing_keys
from gateway.http.principal import Principal, Role
from jobstream.errors import JobstreamError
from jobstream.settings import AccountSettings
from state import redis_keys

ALGORITHM = "EdDSA"
_REQUIRED_CLAIMS = ["sub", "role", "jti", "sid", "exp", "iat", "iss"]


class TokenError(JobstreamError):
    """An access token is refused; ``code`` is ``invalid_token``, ``token_expired`` or ``token_revoked``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RevocationUnavailableError(JobstreamError):
    """The blacklist cannot be reached: a token's revocation can be neither checked (so it is refused) nor recorded."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    role: Role
    company_id: str | None
    token_id: str
    # The refresh-token family (login session) this token was issued in.
    session_id: str
    issued_at: int
    expires_at: int

    def principal(self) -> Principal:
        return Principal(user_id=self.user_id, role=self.role, company_id=self.company_id, token_id=self.token_id)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: AccessClaims
    expires_in: int


class TokenService:
    """Issues and verifies access tokens; the clock is injectable so tests can mint expired tokens."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        public_key: Ed25519PublicKey,
        *,
        issuer: str,
        access_ttl_s: int,
        redis: aioredis.Redis,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._private_key = private_key
        self._public_key = public_key
        self._issuer = issuer
        self.access_ttl_s = access_ttl_s
        self._redis = redis
        self._clock = clock

    def issue(self, user_id: str, role: Role, company_id: str | None, session_id: str) -> IssuedToken:
        now = int(self._clock())
        claims = AccessClaims(
            user_id=user_id,
            role=role,
            company_id=company_id,
            token_id=str(uuid.uuid4()),
            session_id=session_id,
            issued_at=now,
            expires_at=now + self.access_ttl_s,
        )
        payload = {
            "sub": claims.user_id,
            "role": claims.role.value,
            "company_id": claims.company_id,
            "jti": claims.token_id,
            "sid": claims.session_id,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "iss": self._issuer,
        }
        token = jwt.encode(payload, self._private_key, algorithm=ALGORITHM)
        return IssuedToken(token=token, claims=claims, expires_in=self.access_ttl_s)

    def decode(self, token: str) -> AccessClaims:
        """Signature, algorithm, expiry, issuer and claim shapes; not revocation (see `verify`)."""
        try:
            payload = jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "the access token has expired; refresh it") from None
        except jwt.InvalidTokenError as error:
            raise TokenError("invalid_token", f"the access token is not valid: {error}") from None
        return _claims(payload)

    async def verify(self, token: str) -> AccessClaims:
        """`decode`, then refuse a token whose jti or session was revoked."""
        claims = self.decode(token)
        try:
            revoked = await self._redis.exists(
                redis_keys.revoked_token(claims.token_id), redis_keys.revoked_session(claims.session_id)
            )
        except RedisError as error:
            raise RevocationUnavailableError(f"the token blacklist cannot be read: {error}") from error
        if revoked:
            raise TokenError("token_revoked", "the access token was revoked; log in again")
        return claims

    async def revoke(self, claims: AccessClaims) -> None:
        """Blacklist one token until it would have expired anyway."""
        remaining = claims.expires_at - int(self._clock())
        if remaining > 0:
            await self._blacklist(redis_keys.revoked_token(claims.token_id), remaining + 1)

    async def revoke_session(self, session_id: str) -> None:
        """Blacklist every access token issued in a session, for as long as the newest of them may live."""
        await self._blacklist(redis_keys.revoked_session(session_id), self.access_ttl_s + 1)

    async def _blacklist(self, key: str, ttl_s: int) -> None:
        try:
            await self._redis.set(key, b"1", ex=ttl_s)
        except RedisError as error:
            raise RevocationUnavailableError(f"the token blacklist cannot be written: {error}") from error


def token_service(settings: AccountSettings, redis: aioredis.Redis) -> TokenService:
    """A TokenService with the configured keys (dev keys generated on first use), issuer and access TTL."""
    keys = load_signing_keys(settings)
    return TokenService(
        keys.private_key,
        keys.public_key,
        issuer=settings.jwt_issuer,
        access_ttl_s=settings.access_token_ttl_s,
        redis=redis,
    )


def _claims(payload: dict[str, Any]) -> AccessClaims:
    try:
        role = Role(payload["role"])
    except (ValueError, TypeError):
        raise TokenError("invalid_token", "the access token names an unknown role") from None
    company_id = payload.get("company_id")
    strings = [payload["sub"], payload["jti"], payload["sid"]]
    if not all(isinstance(value, str) and value for value in strings) or not isinstance(company_id, str | None):
        raise TokenError("invalid_token", "the access token's claims have the wrong types")
    return AccessClaims(
        user_id=payload["sub"],
        role=role,
        company_id=company_id,
        token_id=payload["jti"],
        session_id=payload["sid"],
        issued_at=int(payload["iat"]),
        expires_at=int(payload["exp"]),
    )
