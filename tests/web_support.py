"""Driving the web pages over ASGI, as a browser without JavaScript would: sign in through the
form, keep the session cookie, send each form with its CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from api.app import Engine, create_app
from api.settings import ApiSettings
from application.users import set_password
from tests.api_support import PASSWORD, Api

NAMES = {"officer": "siân.jones", "adviser": "raj.patel", "council": "sam.lee",
         "other-council": "kit.ward", "auditor": "ada.lovelace", "admin": "ops"}
"""The `api` fixture's users by key (tests/api_support.py)."""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Browser:
    """One person's session: cookies kept, redirects not followed (a test sees them)."""

    http: httpx.AsyncClient

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)

    async def submit(self, url: str, form_page: str, data: dict[str, Any]) -> httpx.Response:
        """POST `data` to `url` as the form on `form_page` would (with its CSRF token)."""
        page = await self.http.get(form_page)
        return await self.http.post(url, data={"csrf_token": csrf_of(page.text), **data})

    async def aclose(self) -> None:
        await self.http.aclose()


async def browser(api: Api, who: str | None = None) -> Browser:
    """A new session on the fixture's app; signed in through the sign-in form as `who`."""
    app = create_app(Engine(store=api.world.store, temporal=api.world.env.client,
                            task_queue=api.world.task_queue),
                     ApiSettings(session_secret=b"k" * 32, secure_cookies=False,
                                 sign_in_rate="100/minute"))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web.test",
                             follow_redirects=False)
    person = Browser(http)
    if who is not None:
        set_password(api.world.store, NAMES[who], PASSWORD)
        answer = await person.submit("/sign-in", "/sign-in",
                                     {"name": NAMES[who], "password": PASSWORD, "next": ""})
        assert answer.status_code == 303, answer.text
    return person
