"""Sign in (a local account, or OpenID Connect where configured) and sign out, as pages.

The session is the API's: a signed cookie with an expiry, holding the user's name and a CSRF
token made afresh at each sign-in. Sign-ins are rate-limited as the API's are."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from application.users import NotSignedIn, check_password
from web.security import CSRF_FIELD, csrf_ok
from web.site import HOME, PageRefused, Site

log = structlog.get_logger("web")


def _safe_next(value: str) -> str | None:
    """Only a path of this site: never another host (`//evil.example`, `https://…`)."""
    parts = urlsplit(value)
    if (not value.startswith("/") or value.startswith("//") or parts.scheme or parts.netloc
            or "\\" in value):
        return None
    return value


def router(site: Site) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    limiter = MovingWindowRateLimiter(MemoryStorage())
    rate = parse(site.settings.sign_in_rate)

    @routes.get("/")
    async def home(request: Request) -> Response:
        user = site.user(request)
        return RedirectResponse(HOME[user.role] if user else "/register", status_code=303)

    @routes.get("/sign-in")
    async def sign_in_page(request: Request, next: str = "") -> Response:
        return site.page(request, "sign_in.html", title="Sign in", error=None, name="",
                         next=_safe_next(next) or "", oidc=site.settings.oidc is not None)

    @routes.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            raise PageRefused(403, "This form has expired: go back, reload the page and try "
                                   "again. Nothing was changed.")
        name = str(form.get("name", ""))[:120].strip()
        password = str(form.get("password", ""))[:1000]
        back_to = _safe_next(str(form.get("next", "")))
        where = request.client.host if request.client else "unknown"
        if not all(limiter.hit(rate, "page-sign-in", key)
                   for key in (f"name:{name}", f"address:{where}")):
            return site.page(request, "sign_in.html", status=429, title="Sign in", name=name,
                             next=back_to or "", oidc=site.settings.oidc is not None,
                             error="Too many sign-ins: wait a minute, then try again.")
        try:
            user = check_password(site.engine.store, name, password)
        except NotSignedIn:
            return site.page(request, "sign_in.html", status=401, title="Sign in", name=name,
                             next=back_to or "", oidc=site.settings.oidc is not None,
                             error="Enter a user name and password that match an account.")
        request.session.clear()
        request.session.update({"user": user.name, "by": "password",
                                "csrf": secrets.token_urlsafe(32)})
        log.info("signed in", user=user.name, role=user.role, by="password", door="page")
        return RedirectResponse(back_to or HOME[user.role], status_code=303)

    @routes.get("/sign-out")
    async def sign_out_page(request: Request) -> Response:
        return site.page(request, "signed_out.html", title="Sign out")

    @routes.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            raise PageRefused(403, "This form has expired: go back, reload the page and try "
                                   "again.")
        request.session.clear()
        return RedirectResponse("/sign-in", status_code=303)

    return routes
