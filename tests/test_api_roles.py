"""The role table through the API, property-based: any action (or starting a case), by any
role, on a case at one of a few stages. A role the table (domain.permissions.MAY) refuses gets
403 with the reason, or 404 when it is another council's user (who must not learn the case
exists), and nothing is recorded; a role the table allows is never refused as unauthorised,
only (at most) by the case's rules, with 409.

Real Temporal (time-skipping) and a real store; the API in-process over ASGI. The cases are
opened and moved on through the API once per test; one that an allowed action moves off its
stage is ended and opened again, so every draw meets a case at the stage it names."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import httpx
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError

from api.app import Engine, create_app
from api.bodies import ACTION_BODIES
from api.settings import ApiSettings
from application.journey import demo_team, document
from application.users import add_user
from domain.actors import Role
from domain.permissions import MAY
from domain.rules import approval_request_id
from domain.vocabulary import CaseKind, Stage
from tests.conftest import CaseWorld, TrackingCaseClient
from workflows.messages import workflow_id_for_case

T = TypeVar("T")
COUNCIL = "E09000008"  # Croydon, built in
OTHER = "E08000025"  # Birmingham, built in
EXAMPLES = 300
"""More than the 252 draws there are (21 actions × 6 users × 2 stages): hypothesis stops once it
has tried them all, in a few seconds."""

USERS: dict[str, tuple[str, Role, str | None]] = {
    "case_officer": ("siân.jones", Role.CASE_OFFICER, None),
    "lga_adviser": ("raj.patel", Role.LGA_ADVISER, None),
    "council": ("sam.lee", Role.COUNCIL, COUNCIL),
    "other_council": ("kit.ward", Role.COUNCIL, OTHER),
    "auditor": ("ada.lovelace", Role.AUDITOR, None),
    "admin": ("ops", Role.ADMIN, None),
}
"""Who may be drawn: every role a user can hold, and a council's user of another council."""

START = "request"
ACTIONS = [*sorted(ACTION_BODIES), START]
STAGES = {Stage.SCOPED: CaseKind.FINANCE, Stage.REPORT_FINAL: CaseKind.CORPORATE_PEER_CHALLENGE}
"""The stages a case is drawn at, each on a kind of its own (one open case per council and
kind): a scoped case, where the team is chosen; a final report, waiting to be published."""


def body_for(action: str, today: date) -> dict[str, Any]:
    """A well-formed body for each action, dated `today` (the case's own today), so that only
    the role table or the case's rules can refuse it."""
    url = f"https://example.org/{COUNCIL}/{action}"
    bodies: dict[str, dict[str, Any]] = {
        "scope": {"scope": ["finance"], "visit_mode": "on_site"},
        "select_team": {"visit_from": today, "visit_to": today},
        "propose_team": {"team": [p.model_dump() for p in demo_team(COUNCIL)]},
        "object_to_peer": {"peer_id": "p-lead-member", "reason": "Worked here in 2024"},
        "confirm_team": {},
        "schedule_visit": {"mode": "on_site", "starts_on": today, "ends_on": today},
        "record_visit": {"started_on": today, "ended_on": today},
        "give_feedback": {"given_on": today, "summary": "Strong leadership; plan needs work."},
        "draft_report": {"document_sha256": document("draft report"), "sent_on": today},
        "factual_accuracy_comments": {"comments": "Paragraph 4: the reserves are £12m."},
        "finalise_report": {"document_sha256": document("final report")},
        "correct_report": {"document_sha256": document("corrected report"),
                           "reason": "Paragraph 4 misquoted the reserves"},
        "publish_report": {"published_on": today, "url": url},
        "publish_action_plan": {"published_on": today, "url": url},
        "hold_progress_review": {"started_on": today, "ended_on": today},
        "publish_progress_review": {"published_on": today, "url": url},
        "withdraw": {"reason": "Intervention instead"},
        "close": {"summary": "Action plan delivered"},
        "approve": {"request_id": approval_request_id("withdraw", 999)},
        "decline": {"request_id": approval_request_id("withdraw", 999),
                    "reason": "Not this way"},
    }
    body = bodies[action]
    return {"action": action, **{k: v.isoformat() if isinstance(v, date) else v
                                 for k, v in body.items()}}


@dataclass
class Case:
    case_id: str
    stage: Stage
    today: date
    """The day the case was requested, by the server's clock (which earlier tests in the
    session may have skipped forward): the date every body of this case is dated."""


@dataclass
class Api:
    http: httpx.AsyncClient
    world: CaseWorld
    tokens: dict[str, str]
    cases: dict[Stage, Case] = field(default_factory=dict)

    async def as_(self, who: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def officer(self, case_id: str, action: str, **body: Any) -> dict[str, Any]:
        return await self.step("case_officer", case_id, {"action": action, **body})

    async def step(self, who: str, case_id: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.as_(who, "POST", f"/api/cases/{case_id}/actions", json=body)
        assert answer.status_code == 200, answer.text
        state: dict[str, Any] = answer.json()["state"]
        return state

    def leave_none_running(self, case_id: str) -> None:
        assert isinstance(self.world.cases, TrackingCaseClient)
        self.world.cases.started.append(workflow_id_for_case(case_id))

    async def open_case(self, stage: Stage) -> Case:
        """A case at `stage`, through the API (ending the slot's case first, if any)."""
        kind = STAGES[stage]
        old = self.cases.get(stage)
        if old is not None:
            with contextlib.suppress(RPCError):
                await self.world.env.client.get_workflow_handle(
                    workflow_id_for_case(old.case_id)).terminate("moved off its stage")
        started = await self.as_("case_officer", "POST", "/api/cases", json={
            "council": COUNCIL, "kind": kind.value, "reason": "Budget gap flagged by the s151",
            "scope": ["finance"]})
        assert started.status_code == 201, started.text
        state = started.json()["state"]
        case_id: str = state["case_id"]
        self.leave_none_running(case_id)
        today = date.fromisoformat(state["requested_at"][:10])
        await self.officer(case_id, "scope", scope=["finance"], visit_mode="on_site")
        if stage == Stage.REPORT_FINAL:
            await self.move_to_report_final(case_id, today)
        self.cases[stage] = Case(case_id, stage, today)
        return self.cases[stage]

    async def move_to_report_final(self, case_id: str, today: date) -> None:
        def journey(action: str) -> dict[str, Any]:
            return body_for(action, today)

        state = await self.step("case_officer", case_id, journey("propose_team"))
        [waiting] = state["awaiting_approval"]
        await self.step("lga_adviser", case_id,
                        {"action": "approve", "request_id": waiting["request_id"]})
        for action in ("confirm_team", "schedule_visit", "record_visit", "give_feedback",
                       "draft_report"):
            await self.step("case_officer", case_id, journey(action))
        await self.step("council", case_id, journey("factual_accuracy_comments"))
        state = await self.step("case_officer", case_id, journey("finalise_report"))
        assert state["stage"] == Stage.REPORT_FINAL.value

    async def case_at(self, stage: Stage) -> Case:
        case = self.cases.get(stage)
        if case is None or case.stage != stage:
            case = await self.open_case(stage)
        return case

    def recorded(self, case_id: str) -> tuple[int, int]:
        """The case's head version, and the store's last position (anything recorded)."""
        store = self.world.store
        return store.head(case_id)[0], store.last_position()


@pytest_asyncio.fixture
async def api(case_world: CaseWorld) -> AsyncIterator[Api]:
    store = case_world.store
    tokens = {who: add_user(store, name, role, council)
              for who, (name, role, council) in USERS.items()}
    app = create_app(Engine(store=store, temporal=case_world.env.client,
                            task_queue=case_world.task_queue),
                     ApiSettings(session_secret=b"k" * 32, secure_cookies=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield Api(http=http, world=case_world, tokens=tokens)


def role_of(who: str) -> Role:
    return USERS[who][1]


def test_every_action_has_a_body_the_api_takes() -> None:
    """The bodies drawn from are well formed, so a refusal is the role table's or the rules'."""
    assert set(ACTIONS) - {START} == set(ACTION_BODIES)
    for action, model in ACTION_BODIES.items():
        model.model_validate(body_for(action, date(2026, 3, 2)))


async def test_the_role_table_decides_every_action_through_the_api(api: Api) -> None:
    loop = asyncio.get_running_loop()
    for stage in STAGES:  # built once, before the draws
        await api.case_at(stage)

    def on_loop(work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the session's loop (where the API and the worker run); wait here."""
        return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=120)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(action=st.sampled_from(ACTIONS), who=st.sampled_from(list(USERS)),
           stage=st.sampled_from(list(STAGES)))
    def a_role_may_only_what_the_table_says(action: str, who: str, stage: Stage) -> None:
        case = on_loop(api.case_at(stage))
        before = api.recorded(case.case_id)
        if action == START:
            answer = on_loop(api.as_(who, "POST", "/api/cases", json={
                "council": COUNCIL, "kind": STAGES[stage].value, "reason": "Another review"}))
        else:
            answer = on_loop(api.as_(who, "POST", f"/api/cases/{case.case_id}/actions",
                                     json=body_for(action, case.today)))
        status = answer.status_code
        seen = f"{who} {action} at {stage.value}: {status} {answer.text[:300]}"
        allowed = action in MAY[role_of(who)]
        if status >= 400:
            detail = answer.json().get("detail")
            assert isinstance(detail, str) and detail.strip(), seen
            assert api.recorded(case.case_id) == before, f"recorded after a refusal: {seen}"

        if who == "other_council" and action != START:
            assert status == 404, seen  # not even told the case exists:
            nowhere = f"{case.case_id}-404"  # the answer for a case that is not there
            unknown = on_loop(api.as_(who, "POST", f"/api/cases/{nowhere}/actions",
                                      json=body_for(action, case.today)))
            assert (unknown.status_code, unknown.json()["detail"].replace(nowhere, "CASE")) == (
                404, answer.json()["detail"].replace(case.case_id, "CASE")), seen
        elif not allowed:
            assert status == 403, seen
        elif action == START:
            assert status in (201, 409), seen  # 409: the council's slot holds the open case
            if status == 201:
                api.leave_none_running(answer.json()["state"]["case_id"])
        else:
            assert status in (200, 409), seen  # never 401/403: only the rules may refuse
            if status == 200:
                moved_to = Stage(answer.json()["state"]["stage"])
                case.stage = moved_to  # moved on: the next draw at `stage` gets a fresh case

    await asyncio.to_thread(a_role_may_only_what_the_table_says)
