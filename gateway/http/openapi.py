"""The API's OpenAPI 3.1 document and a small HTML page of it.

Paths, summaries and statuses are written here; every request body's schema comes from the same field declarations
the routes check bodies with (`object_schema`), and query and header rules from the same constants, so the
document cannot drift from what the gateway accepts.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from gateway.accounts.invitations import ADMIN_INVITE_FIELDS, COMPANY_INVITE_FIELDS
from gateway.accounts.routes import LOGIN_FIELDS, PROFILE_FIELDS, REFRESH_FIELDS, REGISTER_FIELDS
from gateway.applications.routes import APPLICATION_FIELDS, IDEMPOTENCY_KEY, MAX_WAIT_S, STAGE_FIELDS, STAGES
from gateway.http.validation import object_schema
from gateway.jobs.routes import JOB_FIELDS, QUERY_LOCATION, QUERY_TEXT, TRENDING_MAX_HOURS

_UUID = {"type": "string", "format": "uuid"}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {str(s): {"description": _REASONS[s], **ref} for s in statuses}


_REASONS = {
    400: "Malformed JSON",
    401: "Missing, invalid, expired or revoked access token",
    403: "Wrong role, or not your company's job",
    404: "Not found",
    409: (
        "Conflict (a request with the same Idempotency-Key in flight, a job being edited or closed, an email taken, "
        "an invitation already used)"
    ),
    410: "Gone: the invitation was revoked or has expired",
    408: "The body did not arrive whole within the body deadline (JOBSTREAM_GATEWAY_BODY_TIMEOUT_MS, default 10 s)",
    413: "Body too large (JOBSTREAM_GATEWAY_MAX_BODY_BYTES, default 64 KiB; 8 KiB on /v1/auth and /v1/me)",
    415: "Body is not application/json",
    422: "Invalid input; `field` names it",
    429: "Rate limited; see Retry-After and RateLimit-* headers",
    503: (
        "Kafka, Redis or MySQL unavailable, or the gateway at its in-flight bound with its queue full or waited out "
        "(a client address holding its share of the in-flight slots waits in that queue), or, on register and "
        "login, too many password checks waiting (JOBSTREAM_GATEWAY_MAX_QUEUED_HASHES); see Retry-After"
    ),
}
_WRITE_ERRORS = (400, 401, 403, 408, 413, 415, 422, 429, 503)


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _UUID}


_ANALYTICS_RANGE = [
    {"name": name, "in": "query", "schema": {"type": "string", "format": "date-time"}} for name in ("since", "until")
]
_ANALYTICS_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}
_ANALYTICS_ERRORS = _errors(401, 403, 404, 422, 429, 503)
_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 200}},
]


def _choice(name: str, options: tuple[str, ...]) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"enum": list(options)}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Jobstream gateway", "version": "1"},
    "components": {
        "schemas": {"Error": _ERROR},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/jobs/{job_id}/applications": {
            "post": {
                "summary": "Apply to a job (candidate). 202 only once Kafka acknowledged the event.",
                "parameters": [
                    _path_id("job_id"),
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
                    },
                ],
                "requestBody": _json_body(object_schema(APPLICATION_FIELDS)),
                "responses": {
                    "202": {"description": "Accepted: {application_id, status: pending}"},
                    **_errors(*_WRITE_ERRORS, 409),
                },
            },
            "get": {
                "summary": "A job's decided applications, newest first unless sort=oldest (its employers, admins).",
                "parameters": [
                    _path_id("job_id"),
                    _choice("stage", ("submitted", *STAGES)),
                    _choice("status", ("accepted", "rejected")),
                    _choice("sort", ("newest", "oldest")),
                    *_PAGE,
                ],
                "responses": {"200": {"description": "A page of applications; next_cursor"}, **_ANALYTICS_ERRORS},
            },
        },
        "/v1/applications/{application_id}": {
            "get": {
                "summary": (
                    "One application with its stage history (its candidate, its employers, admins). Its candidate "
                    "may ask while it is pending; with wait=N the answer comes as soon as the decision is visible, "
                    "and with wait=N&stage=S as soon as the stage is another than S (live stage updates)."
                ),
                "parameters": [
                    _path_id("application_id"),
                    {"name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_S}},
                    _choice("stage", ("submitted", *STAGES)),
                ],
                "responses": {"200": {"description": "The application"}, **_ANALYTICS_ERRORS},
            }
        },
        "/v1/me/jobs": {
            "get": {
                "summary": "The calling employer's company's jobs, newest first, with their funnel counts.",
                "parameters": [_choice("status", ("open", "closed")), *_PAGE],
                "responses": {
                    "200": {"description": "A page of jobs; next_cursor"},
                    **_errors(401, 403, 422, 429, 503),
                },
            }
        },
        "/v1/applications/{application_id}/stage": {
            "post": {
                "summary": "Move an accepted application along the pipeline (the job's employer).",
                "parameters": [_path_id("application_id")],
                "requestBody": _json_body(object_schema(STAGE_FIELDS)),
                "responses": {"202": {"description": "Accepted"}, **_errors(*_WRITE_ERRORS, 404, 409)},
            }
        },
        "/v1/me/applications": {
            "get": {
                "summary": "The calling candidate's applications, newest first.",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
                ],
                "responses": {"200": {"description": "A page of applications"}, **_errors(401, 403, 422, 429, 503)},
            }
        },
        "/v1/jobs": {
            "post": {
                "summary": "Post a job (employer).",
                "requestBody": _json_body(object_schema(JOB_FIELDS)),
                "responses": {"202": {"description": "Accepted: the job"}, **_errors(*_WRITE_ERRORS)},
            },
            "get": {
                "summary": "Search open jobs (cached 60 s, served stale while revalidating).",
                "security": [],
                "parameters": [
                    {"name": "q", "in": "query", "schema": QUERY_TEXT.json_schema()},
                    {"name": "location", "in": "query", "schema": QUERY_LOCATION.json_schema()},
                    {"name": "remote", "in": "query", "schema": {"enum": ["true", "false"]}},
                    {"name": "salary_min", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
                ],
                "responses": {"200": {"description": "A page of jobs"}, **_errors(422, 429, 503)},
            },
        },
        "/v1/jobs/trending": {
            "get": {
                "summary": "Open jobs with the most accepted applications over the last hours (cached 30 s).",
                "security": [],
                "parameters": [
                    {
                        "name": "hours",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": TRENDING_MAX_HOURS},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
                ],
                "responses": {"200": {"description": "Jobs, each with its accepted count"}, **_errors(422, 429, 503)},
            }
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job's details (cached 5 min), its live counters (null without Redis); records a view.",
                "security": [],
                "parameters": [_path_id("job_id")],
                "responses": {"200": {"description": "The job"}, **_errors(404, 422, 429, 503)},
            },
            "patch": {
                "summary": "Change some of a job's fields (its employer).",
                "parameters": [_path_id("job_id")],
                "requestBody": _json_body(object_schema(JOB_FIELDS, partial=True)),
                "responses": {"202": {"description": "Accepted: the job"}, **_errors(*_WRITE_ERRORS, 404, 409)},
            },
        },
        "/v1/jobs/{job_id}/close": {
            "post": {
                "summary": "Close a job (its employer).",
                "parameters": [_path_id("job_id")],
                "responses": {"202": {"description": "Accepted: the job"}, **_errors(401, 403, 404, 409, 429, 503)},
            }
        },
        "/v1/auth/register": {
            "post": {
                "summary": (
                    "Register a candidate or employer (an employer gets a new company); with an invite_token, the "
                    "invitation's role and company (it is used up). Returns tokens."
                ),
                "security": [],
                "requestBody": _json_body(object_schema(REGISTER_FIELDS)),
                "responses": {
                    "201": {"description": "Tokens and profile"},
                    **_errors(400, 408, 409, 410, 413, 415, 422, 429, 503),
                },
            }
        },
        "/v1/companies/{company_id}/invitations": {
            "post": {
                "summary": "Invite an employer to the company (its employers, admins); the invite_token is shown once.",
                "parameters": [_path_id("company_id")],
                "requestBody": _json_body(object_schema(COMPANY_INVITE_FIELDS)),
                "responses": {
                    "201": {"description": "The invitation with its invite_token"},
                    **_errors(*_WRITE_ERRORS, 404, 409),
                },
            },
            "get": {
                "summary": "The company's pending invitations, newest first, without tokens (its employers, admins).",
                "parameters": [
                    _path_id("company_id"),
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
                ],
                "responses": {"200": {"description": "A page of invitations"}, **_ANALYTICS_ERRORS},
            },
        },
        "/v1/companies/{company_id}/invitations/{invitation_id}": {
            "delete": {
                "summary": "Revoke a pending invitation (the company's employers, admins); revoking twice is harmless.",
                "parameters": [_path_id("company_id"), _path_id("invitation_id")],
                "responses": {"204": {"description": "Revoked"}, **_errors(401, 403, 404, 409, 422, 429, 503)},
            }
        },
        "/v1/invitations": {
            "post": {
                "summary": (
                    "Invite an analyst, or an employer to an existing company or a new one (admin); the invite_token "
                    "is shown once."
                ),
                "requestBody": _json_body(object_schema(ADMIN_INVITE_FIELDS)),
                "responses": {
                    "201": {"description": "The invitation with its invite_token"},
                    **_errors(*_WRITE_ERRORS, 404, 409),
                },
            }
        },
        "/v1/auth/login": {
            "post": {
                "summary": "Log in; rate-limited per account and per IP.",
                "security": [],
                "requestBody": _json_body(object_schema(LOGIN_FIELDS)),
                "responses": {
                    "200": {"description": "Tokens and profile"},
                    **_errors(400, 401, 408, 413, 415, 422, 429, 503),
                },
            }
        },
        "/v1/auth/refresh": {
            "post": {
                "summary": "Trade a refresh token (single use; reuse revokes its family) for new tokens.",
                "security": [],
                "requestBody": _json_body(object_schema(REFRESH_FIELDS)),
                "responses": {"200": {"description": "Tokens"}, **_errors(400, 401, 408, 413, 415, 422, 429, 503)},
            }
        },
        "/v1/auth/logout": {
            "post": {
                "summary": "Revoke this access token and its refresh family.",
                "responses": {"204": {"description": "Logged out"}, **_errors(401, 503)},
            }
        },
        "/v1/me": {
            "get": {"summary": "The caller's profile.", "responses": {"200": {"description": "Profile"}}},
            "patch": {
                "summary": "Change the display name.",
                "requestBody": _json_body(object_schema(PROFILE_FIELDS, partial=True)),
                "responses": {"200": {"description": "Profile"}, **_errors(400, 401, 408, 413, 415, 422, 429, 503)},
            },
        },
        "/v1/analytics/jobs/{job_id}/windows": {
            "get": {
                "summary": "A job's 1-minute windows in [since, until), oldest first (analyst, admin, its employer).",
                "parameters": [_path_id("job_id"), *_ANALYTICS_RANGE, _ANALYTICS_LIMIT],
                "responses": {"200": {"description": "A page of windows; next_since"}, **_ANALYTICS_ERRORS},
            }
        },
        "/v1/analytics/companies/{company_id}/windows": {
            "get": {
                "summary": "A company's 1-hour windows hopping every 5 minutes (analyst, admin, its employers).",
                "parameters": [_path_id("company_id"), *_ANALYTICS_RANGE, _ANALYTICS_LIMIT],
                "responses": {"200": {"description": "A page of windows; next_since"}, **_ANALYTICS_ERRORS},
            }
        },
        "/v1/analytics/jobs/{job_id}/funnel": {
            "get": {
                "summary": "A job's funnel: views, decided applications, accepted, stages, conversions.",
                "parameters": [_path_id("job_id")],
                "responses": {"200": {"description": "The funnel"}, **_ANALYTICS_ERRORS},
            }
        },
        "/v1/analytics/rejections": {
            "get": {
                "summary": "Rejections by reason over the job windows (employers: their company only).",
                "parameters": [*_ANALYTICS_RANGE, {"name": "company_id", "in": "query", "schema": _UUID}],
                "responses": {"200": {"description": "Counts by reason, busiest first"}, **_ANALYTICS_ERRORS},
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: Kafka, MySQL and Redis answer (probed at most once a second, the result cached)",
                "security": [],
                "responses": {"200": {"description": "ready"}, "503": {"description": "a dependency is down"}},
            }
        },
    },
}


class DocsRoutes:
    def __init__(self, document: dict[str, Any] = OPENAPI) -> None:
        self._document = document

    def routes(self) -> list[Route]:
        return [
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
        ]

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(self._document)

    async def docs(self, request: Request) -> HTMLResponse:
        rows = []
        for path, operations in self._document["paths"].items():
            for method, operation in operations.items():
                statuses = ", ".join(operation.get("responses", {}))
                rows.append(
                    f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                    f"<td>{html.escape(operation['summary'])}</td><td>{statuses}</td></tr>"
                )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Jobstream API</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;border-bottom:1px solid #ddd}"
            "</style></head><body><h1>Jobstream API</h1>"
            "<p>Authenticate with <code>Authorization: Bearer &lt;access token&gt;</code>. Every error is "
            '<code>{"error": {"code", "message", "field"}}</code>. Machine-readable: '
            "<a href='/openapi.json'>/openapi.json</a>.</p>"
            "<table><tr><th>method</th><th>path</th><th>what</th><th>statuses</th></tr>"
            f"{''.join(rows)}</table></body></html>"
        )
        return HTMLResponse(page)
