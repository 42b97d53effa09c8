"""The public register (issue 18): every English council's corporate peer challenges, for anyone,
with no sign-in; the same rows as CSV and JSON (with the same filters), and an Atom feed of
publications and lapses.

The rows come from `application.register`, which reads the read models as they stand: a
public page never writes, so it neither catches the projection up nor keeps anything. When the
projection has stopped on a problem in the events, every door answers 503 with one line of why.
"""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment
from markupsafe import Markup

from application.register import (
    Register,
    RegisterUnavailable,
    as_atom,
    as_csv,
    as_json,
    feed_entries,
    register,
)
from eventstore.councils import register_version
from eventstore.projections import status
from web.site import Kept, Site

log = structlog.get_logger("web")
Choice = Annotated[str | None, Query(max_length=100)]
Kind = Annotated[str | None, Query(alias="type", max_length=100)]
"""The council type (`type=LBO`), named so as not to hide the builtin."""
UNAVAILABLE = "The register cannot be shown just now"


class Tags:
    """govukTag's markup, rendered once for each text and colour: the register shows about a
    thousand tags of a few dozen kinds, and calling the macro for each would cost more than
    the rest of the page."""

    def __init__(self, env: Environment) -> None:
        self.template = env.from_string(
            '{% from "govuk_frontend_jinja/components/tag/macro.html" import govukTag %}'
            "{{ govukTag({'text': text, 'classes': 'govuk-tag--' ~ colour}) | trim }}")
        self.made: Kept[tuple[str, str], Markup] = Kept(2000)

    def __call__(self, text: str, colour: str) -> Markup:
        key = (text, colour)
        tag = self.made.get(key)
        if tag is None:
            html = self.template.render(text=text, colour=colour)  # escaped by the macro
            tag = self.made.keep(key, Markup(
                " ".join(html.split()).replace("> ", ">").replace(" <", "<")))
        return tag


def router(site: Site) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    tag = Tags(site.env)

    async def read(region: str | None, council_type: str | None,
                   late: str | None) -> Register:
        return await asyncio.to_thread(register, site.engine.store, region=region,
                                       type_=council_type, late=late)

    def unavailable(request: Request, why: RegisterUnavailable, *, page: bool) -> Response:
        log.warning("register not shown: the projection stopped", path=request.url.path)
        if page:
            return site.page(request, "register/unavailable.html", status=503,
                             title=UNAVAILABLE, why=str(why))
        return PlainTextResponse(f"{UNAVAILABLE}: {why}.\n", status_code=503,
                                 headers={"Retry-After": "600"})

    drawn: Kept[tuple[object, ...], str] = Kept(64)
    """Pages as drawn, by what they show: the read models' position, the day (lateness
    counts to today), the council register's version, the filters and who is signed in.
    A page is drawn once per change, not once per reader."""

    def version(user: str | None, *asked: str | None) -> tuple[object, ...]:
        store = site.engine.store
        current = status(store.engine)  # a stopped projection is a new key: it answers 503
        return (current.position, current.problem, datetime.now(UTC).date(),
                register_version(store), user, *asked)

    @routes.get("/register")
    async def register_page(request: Request, region: Choice = None,
                            council_type: Kind = None, late: Choice = None) -> Response:
        user = site.user(request)
        key = await asyncio.to_thread(version, user.name if user else None, region,
                                      council_type, late)
        html = drawn.get(key)
        if html is not None:
            return HTMLResponse(html)
        try:
            found = await read(region, council_type, late)
        except RegisterUnavailable as why:
            return unavailable(request, why, page=True)
        page = await asyncio.to_thread(functools.partial(
            site.page, request, "register/index.html", title="Public register", user=user),
            register=found, query=found.filter.query(), tag=tag)
        drawn.keep(key, bytes(page.body).decode("utf-8"))
        return page

    @routes.get("/register.csv")
    async def register_csv(request: Request, region: Choice = None,
                           council_type: Kind = None, late: Choice = None) -> Response:
        try:
            found = await read(region, council_type, late)
        except RegisterUnavailable as why:
            return unavailable(request, why, page=False)
        return Response(as_csv(found.rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="peer-challenge-register.csv"'})

    @routes.get("/register.json")
    async def register_json(request: Request, region: Choice = None,
                            council_type: Kind = None, late: Choice = None) -> Response:
        try:
            found = await read(region, council_type, late)
        except RegisterUnavailable as why:
            return unavailable(request, why, page=False)
        return Response(json.dumps(as_json(found), ensure_ascii=False),
                        media_type="application/json")

    @routes.get("/register.atom")
    async def register_atom(request: Request) -> Response:
        try:
            entries = await asyncio.to_thread(feed_entries, site.engine.store)
        except RegisterUnavailable as why:
            return unavailable(request, why, page=False)
        base = str(request.base_url).rstrip("/")
        body = as_atom(entries, register_url=f"{base}/register",
                       feed_url=f"{base}/register.atom", today=datetime.now(UTC).date())
        return Response(body, media_type="application/atom+xml")

    return routes
