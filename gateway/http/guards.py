"""Who may call a route: the authenticated principal, with 401 for anonymous callers and 403 for the wrong role."""

from __future__ import annotations

from starlette.requests import Request

from gateway.http.errors import ApiError
from gateway.http.principal import Principal, Role
from gateway.http.validation import query_int


def require_role(request: Request, *roles: Role) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise ApiError(
            401,
            "unauthenticated",
            "send an access token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="jobstream"'},
        )
    if user.role not in roles:
        raise ApiError(403, "forbidden", f"this needs the role {' or '.join(roles)}, you are {user.role}")
    return user


def page_params(request: Request, *, max_limit: int = 50, max_offset: int = 1_000) -> tuple[int, int]:
    """`limit` (1..max_limit, default 20) and `offset` (0..max_offset) from the query string."""
    return (
        query_int(request, "limit", minimum=1, maximum=max_limit, default=20),
        query_int(request, "offset", minimum=0, maximum=max_offset, default=0),
    )
