"""The API in-process over ASGI, with a user of each role: the fixture the API's tests share
(registered for every test module by conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from api.app import Engine, create_app
from api.settings import ApiSettings
from application.users import add_user
from domain.actors import Role
from tests.conftest import CaseWorld, TrackingCaseClient

COUNCIL = "E09000008"  # Croydon, built in
OTHER = "E08000025"  # Birmingham, built in
PASSWORD = "correct horse battery"


@dataclass
class Api:
    http: httpx.AsyncClient
    world: CaseWorld
    tokens: dict[str, str]

    async def as_(self, who: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def start(self, who: str = "officer", council: str = COUNCIL) -> httpx.Response:
        return await self.as_(who, "POST", "/api/cases", json={
            "council": council, "kind": "corporate_peer_challenge",
            "reason": "Budget gap flagged by the s151 officer", "scope": ["finance"]})

    async def act(self, who: str, case_id: str, **body: Any) -> httpx.Response:
        return await self.as_(who, "POST", f"/api/cases/{case_id}/actions", json=body)

    def leave_none_running(self, workflow_id: str) -> None:
        """Cases opened through the API are ended with the test, like the fixture's own."""
        assert isinstance(self.world.cases, TrackingCaseClient)
        self.world.cases.started.append(workflow_id)

    def versions(self, case_id: str) -> int:
        return self.world.store.head(case_id)[0]


@pytest_asyncio.fixture
async def api(case_world: CaseWorld) -> AsyncIterator[Api]:
    store = case_world.store
    tokens = {
        "officer": add_user(store, "siân.jones", Role.CASE_OFFICER, password=PASSWORD),
        "adviser": add_user(store, "raj.patel", Role.LGA_ADVISER),
        "council": add_user(store, "sam.lee", Role.COUNCIL, COUNCIL, password=PASSWORD),
        "other-council": add_user(store, "kit.ward", Role.COUNCIL, OTHER),
        "auditor": add_user(store, "ada.lovelace", Role.AUDITOR),
        "admin": add_user(store, "ops", Role.ADMIN),
    }
    app = create_app(Engine(store=store, temporal=case_world.env.client,
                            task_queue=case_world.task_queue),
                     ApiSettings(session_secret=b"k" * 32, secure_cookies=False,
                                 sign_in_rate="3/minute"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield Api(http=http, world=case_world, tokens=tokens)


async def scoped_case(api: Api) -> str:
    started = await api.start()
    assert started.status_code == 201, started.text
    case_id: str = started.json()["state"]["case_id"]
    api.leave_none_running(f"improvement-case-cpc-{COUNCIL}")
    scoped = await api.act("officer", case_id, action="scope", scope=["finance"],
                           visit_mode="on_site")
    assert scoped.status_code == 200, scoped.text
    return case_id
