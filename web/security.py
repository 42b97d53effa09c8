"""What every page response carries, and the check every form's POST passes.

The Content-Security-Policy allows no inline script and nothing from elsewhere: the pages'
one script is a file of ours (`/static/app.mjs`) and GOV.UK Frontend's module. Every form
carries the session's CSRF token in a hidden field; a POST without the same token is refused
(403) and changes nothing."""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; manifest-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
NOT_FOR = ("/api/docs",)
"""FastAPI's own documentation page loads its script from a CDN: it keeps its own rules."""
CSRF_FIELD = "csrf_token"


class PageHeaders:
    """Sets HEADERS on every answer that has not set its own, as a plain ASGI middleware:
    Starlette's `BaseHTTPMiddleware` (`app.middleware("http")`) runs each request through a
    task group and a memory stream, which cost every page and static file more than the
    headers themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(NOT_FOR):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (a page shown before sign-in has one)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    expected = request.session.get("csrf")
    return (isinstance(expected, str) and isinstance(sent, str) and bool(expected)
            and secrets.compare_digest(expected, sent))
