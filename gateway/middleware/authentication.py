"""Bearer-token authentication: puts a `Principal` on ``request.user`` and the role in ``request.auth.scopes``.

A request without an Authorization header goes on anonymous (routes decide whether that is enough); a header
with a bad, expired or revoked token ends at once in a 401 JSON error, and an unreadable blacklist in a 503.
"""

from __future__ import annotations

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from gateway.accounts.tokens import RevocationUnavailableError, TokenError, TokenService
from gateway.http.errors import ApiError, error_response
from gateway.http.principal import Principal

_RETRY_AFTER_S = 1


class BearerAuthError(AuthenticationError):
    """Why a request's credentials were refused, as the JSON error the client gets."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def unauthenticated(code: str, message: str) -> ApiError:
    """A 401 that tells the client how to authenticate."""
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="jobstream"'})


class BearerTokenBackend(AuthenticationBackend):
    def __init__(self, tokens: TokenService) -> None:
        self._tokens = tokens

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Principal] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise BearerAuthError(unauthenticated("invalid_token", "send 'Authorization: Bearer <access token>'"))
        try:
            claims = await self._tokens.verify(token)
        except TokenError as error:
            raise BearerAuthError(unauthenticated(error.code, error.message)) from None
        except RevocationUnavailableError:
            raise BearerAuthError(
                ApiError(
                    503,
                    "auth_unavailable",
                    "tokens cannot be checked right now; retry shortly",
                    headers={"Retry-After": str(_RETRY_AFTER_S)},
                )
            ) from None
        return AuthCredentials([claims.role.value]), claims.principal()


def authentication_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    error = exc.error if isinstance(exc, BearerAuthError) else unauthenticated("invalid_token", str(exc))
    return error_response(error.status, error.code, error.message, error.field, error.headers)


def authentication_middleware(tokens: TokenService) -> Middleware:
    """The middleware entry for the app's stack, with our JSON error responses."""
    return Middleware(AuthenticationMiddleware, backend=BearerTokenBackend(tokens), on_error=authentication_error)
