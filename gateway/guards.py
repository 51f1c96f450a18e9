"""Who may call a route: the authenticated principal, with 401 for anonymous callers and 403 for the wrong role."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import ApiError
from gateway.principal import Principal, Role


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
        _int_param(request, "limit", 20, 1, max_limit),
        _int_param(request, "offset", 0, 0, max_offset),
    )


def _int_param(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit also accepts digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= maximum:
        raise ApiError(422, "invalid_field", f"must be an integer from {minimum} to {maximum}", field=name)
    return int(raw)
