"""Every error the gateway answers is JSON ``{"error": {"code", "message", "field"}}`` with a meaningful status."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobstream.errors import DependencyUnavailable, JobstreamError


class ApiError(JobstreamError):
    """An answer to the client other than success: raised anywhere below a route, rendered by `api_error`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


class InvalidField(ApiError):
    """Input the gateway refuses; `field` names the offending body field, header or path parameter."""

    def __init__(self, field: str | None, message: str, *, code: str = "invalid_field") -> None:
        super().__init__(422, code, message, field=field)


class Unavailable(ApiError):
    """A dependency (Kafka, Redis, MySQL) cannot serve now: 503 with Retry-After, the client may retry."""

    def __init__(self, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(503, code, message, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):
        raise exc
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def dependency_unavailable(request: Request, exc: Exception) -> Response:
    """Kafka, MySQL or Redis cannot serve now (an open breaker, say): 503 with Retry-After, the client may retry."""
    if not isinstance(exc, DependencyUnavailable):
        raise exc
    return error_response(
        503,
        f"{exc.dependency}_unavailable",
        exc.message,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (and 413 from a body limit) in our error shape."""
    if not isinstance(exc, HTTPException):
        raise exc
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def internal_error(request: Request, exc: Exception) -> Response:
    # Only a bug gets here: answer in the same shape, without the traceback (ServerErrorMiddleware logs it).
    return error_response(500, "internal", "internal error")


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    DependencyUnavailable: dependency_unavailable,
    HTTPException: http_error,
    Exception: internal_error,
}
