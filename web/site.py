"""The web pages beside the API: assets, templates, who is signed in, and the answers every
page shares (sign in first, refused, not found) as HTML.

`add_site(app, engine, settings)` mounts everything on the API's FastAPI application, so the
pages and the API are one service: the same users, the same session cookie (signed, with an
expiry, `Secure` unless in development), the same application layer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.users import User, user_named
from domain.actors import Role
from web.security import PageHeaders, csrf_token
from web.templating import environment

if TYPE_CHECKING:
    from api.app import Engine
    from api.settings import ApiSettings

log = structlog.get_logger("web")
HERE = Path(__file__).parent
GOVUK = HERE / "node_modules" / "govuk-frontend" / "dist" / "govuk"
"""GOV.UK Frontend as `make` installs it from web/package-lock.json (`npm ci`)."""
SERVICE = "Improvement cases"
K = TypeVar("K")
V = TypeVar("V")


class Kept(Generic[K, V]):
    """What pages worked out (a page drawn, a team's reasons), by everything it depends on:
    the keys carry the versions of what was read, so an old entry is dead weight, never
    wrong, and the whole is forgotten at once when `limit` is reached."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._kept.get(key)

    def keep(self, key: K, value: V) -> V:
        if len(self._kept) >= self.limit:
            self._kept.clear()
        self._kept[key] = value
        return value


class SignInFirst(Exception):
    """The page needs a signed-in user: answered with a redirect to the sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class PageRefused(Exception):
    """A page or form this user may not see or use (403), or that does not exist (404): the
    answer shows no data, only why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class NavItem:
    text: str
    href: str


NAV: dict[Role, tuple[NavItem, ...]] = {
    Role.CASE_OFFICER: (NavItem("Dashboard", "/dashboard"), NavItem("Start a case", "/cases/new"),
                        NavItem("Audit", "/audit"), NavItem("Public register", "/register")),
    Role.LGA_ADVISER: (NavItem("Dashboard", "/dashboard"), NavItem("Start a case", "/cases/new"),
                       NavItem("Audit", "/audit"), NavItem("Public register", "/register")),
    Role.COUNCIL: (NavItem("Our cases", "/council"), NavItem("Public register", "/register")),
    Role.AUDITOR: (NavItem("Audit", "/audit"), NavItem("Public register", "/register")),
    Role.ADMIN: (NavItem("Public register", "/register"),),
}
HOME: dict[Role, str] = {Role.CASE_OFFICER: "/dashboard", Role.LGA_ADVISER: "/dashboard",
                         Role.COUNCIL: "/council", Role.AUDITOR: "/audit",
                         Role.ADMIN: "/register"}


class Site:
    """What every page module is given."""

    def __init__(self, engine: Engine, settings: ApiSettings, env: Environment) -> None:
        self.engine = engine
        self.settings = settings
        self.env = env

    def user(self, request: Request) -> User | None:
        """The signed-in user of the session, or None (also for a user revoked since)."""
        name = request.session.get("user")
        if not isinstance(name, str):
            return None
        try:
            return user_named(self.engine.store, name, str(request.session.get("by", "session")))
        except Exception:
            request.session.clear()
            return None

    def require(self, request: Request, roles: Iterable[Role] | None = None) -> User:
        """The signed-in user, if their role may see this page (else 403, no data shown)."""
        user = self.user(request)
        if user is None:
            raise SignInFirst(str(request.url.path)
                              + (f"?{request.url.query}" if request.url.query else ""))
        if roles is not None and user.role not in set(roles):
            raise PageRefused(403, "Your role cannot see this page.")
        return user

    def page(self, request: Request, template: str, *, status: int = 200,
             title: str, **context: Any) -> HTMLResponse:
        user = context.pop("user", None) or self.user(request)
        html = self.env.get_template(template).render(
            request=request, user=user, title=title, service=SERVICE,
            nav=NAV.get(user.role, ()) if user is not None else (),
            csrf_token=csrf_token(request), path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)


def add_site(app: FastAPI, engine: Engine, settings: ApiSettings) -> Site:
    """Mount the pages, their assets and their shared answers on the API's application."""
    site = Site(engine, settings, environment())
    app.add_middleware(PageHeaders)
    if GOVUK.is_dir():
        app.mount("/assets", StaticFiles(directory=GOVUK / "assets"), name="govuk-assets")
        app.mount("/govuk", StaticFiles(directory=GOVUK), name="govuk")
    else:  # pages still work, unstyled
        log.warning("GOV.UK Frontend is not installed: run `make` (npm ci in web/)",
                    expected=str(GOVUK))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(SignInFirst)
    async def sign_in_first(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInFirst)
        return RedirectResponse(f"/sign-in?next={quote(error.back_to, safe='/')}",
                                status_code=303)

    @app.exception_handler(PageRefused)
    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageRefused)
        title = "Page not found" if error.status == 404 else "You cannot see this page"
        return site.page(request, "refused.html", status=error.status, title=title,
                         message=error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        """The API's addresses answer JSON as FastAPI does; every other address a page."""
        assert isinstance(error, StarletteHTTPException)
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, error)
        if error.status_code == 404:
            return site.page(request, "refused.html", status=404, title="Page not found",
                             message="If you typed the web address, check it is correct.")
        return site.page(request, "refused.html", status=error.status_code,
                         title="Sorry, there is a problem", message=str(error.detail))

    from web.pages import audit, cases, council, register, signin

    for pages in (signin, register, cases, council, audit):
        app.include_router(pages.router(site))
    return site
