"""The front end's server: the files under ``web/static`` and ``/config.json`` (where the API is), nothing else.

Every page is static and calls the gateway's public API from the browser (cross-origin: the gateway allows this
origin by CORS). The Content-Security-Policy lets pages run only their own scripts and connect only to that API,
so text from the API can never become code, even if a page slipped.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobstream.settings import WebSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"


class SecurityHeaders:
    """The same headers on every answer: a strict CSP, no framing, no MIME sniffing, no referrer to the API."""

    def __init__(self, app: ASGIApp, api_url: str) -> None:
        self._app = app
        policy = (
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"connect-src 'self' {api_url}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
        )
        self._headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers]
            await send(message)

        await self._app(scope, receive, with_headers)


def build_web_app(settings: WebSettings) -> Starlette:
    async def config(request: Request) -> Response:
        return JSONResponse({"api_url": settings.api_url}, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/config.json", config, methods=["GET"]),
            Mount("/", StaticFiles(directory=STATIC_DIR, html=True)),
        ],
        middleware=[Middleware(SecurityHeaders, api_url=settings.api_url)],
    )
