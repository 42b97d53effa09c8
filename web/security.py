"""What every page response carries, and the check every form's POST passes.

The Content-Security-Policy allows no inline script and nothing from elsewhere: the pages'
one script is a file of ours (`/static/app.mjs`) and GOV.UK Frontend's module. Every form
carries the session's CSRF token in a hidden field; a POST without the same token is refused
(403) and changes nothing."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; manifest-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
NOT_FOR = ("/api/docs",)
"""FastAPI's own documentation page loads its script from a CDN: it keeps its own rules."""
CSRF_FIELD = "csrf_token"


async def page_headers(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    if not request.url.path.startswith(NOT_FOR):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
    return response


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
