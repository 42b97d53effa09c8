"""Pages: the council's portal, its home in the service.

A council user sees its own council's cases only (BRIEF §5), open and ended, each with what
the council is waiting to do and by when: the council acts on the shared case page
(`/cases/{case_id}`), so these pages are the list, the deadlines and the links. One case's
summary shows the draft report's status and the proposed team, whom the council may see and
object to (BRIEF §1). Another council's case is answered as a case that does not exist: 404,
showing nothing of it.

Read from the read models, caught up first (as `application.cases.list_cases` does), so a
step the council has just recorded shows at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from application.notices import NoticeShown, case_notices
from application.users import User
from domain.actors import Role
from domain.councils import Council
from domain.deadlines import LADDER, Due, pending
from domain.policies import PolicyBook
from domain.read_models import policy_of
from domain.state import CaseState
from domain.vocabulary import DeadlineName, Stage
from eventstore.councils import known_councils
from eventstore.projections import ProjectionBroken
from web.audit_reads import CaseOnRecord, case_of_council, cases_of_council, is_case_id
from web.site import PageRefused, Site

log = structlog.get_logger("web")
BOOK = PolicyBook(demo_mode=True)
"""How the read models resolve a case's deadline policy by name (the projector's own book),
so the deadlines shown here are the ones the summaries were worked out with."""

DEADLINE_WORDS: dict[DeadlineName, str] = {
    DeadlineName.FACTUAL_ACCURACY_CHECK: "Factual-accuracy check of the draft report",
    DeadlineName.REPORT_PUBLICATION: "Report published",
    DeadlineName.ACTION_PLAN_PUBLICATION: "Action plan published",
    DeadlineName.PROGRESS_REVIEW: "Progress review held",
    DeadlineName.PROGRESS_REVIEW_PUBLICATION: "Progress review report published",
}
LGA_DEADLINES = (DeadlineName.PROGRESS_REVIEW,)
"""Deadlines the LGA meets, not the council: shown, but never as the council's to do."""

COUNCIL_STEPS: dict[Stage, tuple[str, DeadlineName]] = {
    Stage.REPORT_DRAFTED: ("Check the draft report for factual accuracy and send your comments",
                           DeadlineName.FACTUAL_ACCURACY_CHECK),
    Stage.REPORT_FINAL: ("Publish the report, then record its publication with its web address",
                         DeadlineName.REPORT_PUBLICATION),
    Stage.REPORT_PUBLISHED: ("Publish the action plan, then record its publication with its "
                             "web address", DeadlineName.ACTION_PLAN_PUBLICATION),
    Stage.PROGRESS_REVIEW_HELD: ("Publish the progress review report, then record its "
                                 "publication with its web address",
                                 DeadlineName.PROGRESS_REVIEW_PUBLICATION),
}
"""The steps of the journey that wait on the council (BRIEF §5), by the stage that awaits them."""
OBJECTING = ("Look at the proposed peer team: if you have a reason, object to a proposed peer "
             "(the council never chooses its peers, but its objection is recorded)")
NOT_FOUND = "There is no case at this address among your council's cases."


@dataclass(frozen=True)
class Duty:
    """What the council is waiting to do on a case, and by when."""

    text: str
    due_at: datetime | None
    missed: bool
    """The deadline has already lapsed: the escalation ladder is climbing."""


@dataclass(frozen=True)
class DeadlineLine:
    """One deadline of a case: still to meet, or missed (and what followed)."""

    label: str
    whose: str
    due_at: datetime
    missed: bool
    done_on: date | None
    """When the step was done, for a missed deadline met late."""
    lapsed_as_drafted: bool
    """A missed factual-accuracy check: the report was made final as drafted."""
    escalation_level: int
    escalated_to: str | None


@dataclass(frozen=True)
class CaseItem:
    """A case on the portal's list."""

    case: CaseOnRecord
    duty: Duty | None
    next_deadline: str | None


def _dues(state: CaseState) -> list[Due]:
    """The deadlines still to meet, by the policy the case runs by (none if unknown here)."""
    policy = policy_of(state, BOOK)
    return [] if policy is None else [d for d in pending(state, policy) if d.action == "lapse"]


def duty_of(state: CaseState, dues: list[Due]) -> Duty | None:
    """What the case waits for from the council; None when its next step is the LGA's."""
    if not state.is_open:
        return None
    if state.stage == Stage.SCOPED and state.proposed_team:
        return Duty(OBJECTING, None, False)
    step = COUNCIL_STEPS.get(state.stage) if state.stage is not None else None
    if step is None:
        return None
    text, deadline = step
    missed_at = state.missed_due(deadline)
    due_at = next((d.due_at for d in dues if d.deadline == deadline), missed_at)
    return Duty(text, due_at, missed_at is not None)


def _done_on(state: CaseState, deadline: DeadlineName) -> date | None:
    return {DeadlineName.REPORT_PUBLICATION: state.report_published_on,
            DeadlineName.ACTION_PLAN_PUBLICATION: state.action_plan_published_on,
            DeadlineName.PROGRESS_REVIEW: state.progress_review_held_on,
            DeadlineName.PROGRESS_REVIEW_PUBLICATION: state.progress_review_published_on,
            }.get(deadline)


def deadlines_of(state: CaseState, dues: list[Due]) -> list[DeadlineLine]:
    """Every deadline still to meet and every one missed, soonest first."""
    lines = [DeadlineLine(DEADLINE_WORDS[d.deadline], _whose(d.deadline), d.due_at, False, None,
                          False, 0, None) for d in dues]
    for deadline, due_at in state.missed_due_at:
        open_escalation = state.escalation_for(deadline)
        level = open_escalation.level if open_escalation is not None else 0
        lines.append(DeadlineLine(
            DEADLINE_WORDS[deadline], _whose(deadline), due_at, True, _done_on(state, deadline),
            deadline == DeadlineName.FACTUAL_ACCURACY_CHECK, level,
            LADDER[level].format(council=state.council) if level in LADDER else None))
    return sorted(lines, key=lambda line: line.due_at)


def _whose(deadline: DeadlineName) -> str:
    return "the LGA" if deadline in LGA_DEADLINES else "your council"


def _council_of(user: User) -> str:
    council = user.principal.council
    if council is None:  # pragma: no cover - a council user always names its council
        raise PageRefused(403, "Your account names no council.")
    return council


def _place(councils: dict[str, Council], gss: str | None) -> str:
    """`London Borough of Croydon (E09000008)`; the LGA's own staff have no council."""
    if gss is None:
        return "the LGA"
    known = councils.get(gss)
    return f"{known.name} ({gss})" if known is not None else gss


def _notices(site: Site, case_id: str) -> list[NoticeShown]:
    """Who was told what about the case, without the LGA's people's addresses."""
    try:
        return case_notices(site.engine.store, case_id, lga_addresses=False)
    except SQLAlchemyError:  # a store not yet migrated to notices: the case stands alone
        return []


def router(site: Site) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    store = site.engine.store

    def unavailable(request: Request, broken: ProjectionBroken) -> Response:
        log.warning("council portal unavailable", problem=str(broken))
        return site.page(request, "refused.html", status=503,
                         title="Your cases cannot be shown just now",
                         message="The service's lists of cases are being repaired. Nothing "
                                 "you recorded is lost; try again later.")

    @routes.get("/council")
    async def portal(request: Request) -> Response:
        """The council's cases, what is due from it on each, and by when."""
        user = site.require(request, [Role.COUNCIL])
        council = _council_of(user)
        try:
            cases = await asyncio.to_thread(cases_of_council, store, council)
        except ProjectionBroken as broken:
            return unavailable(request, broken)
        councils = await asyncio.to_thread(known_councils, store)
        items = []
        for case in cases:
            dues = _dues(case.state)
            name = case.summary.next_deadline
            items.append(CaseItem(case, duty_of(case.state, dues),
                                  DEADLINE_WORDS.get(DeadlineName(name)) if name else None))
        return site.page(
            request, "council/portal.html", title="Your council's cases", user=user,
            council=_place(councils, council),
            open_cases=[i for i in items if i.case.state.is_open],
            ended_cases=[i for i in items if not i.case.state.is_open],
            due_from_you=[i for i in items if i.duty is not None])

    @routes.get("/council/cases/{case_id}")
    async def summary(request: Request, case_id: str) -> Response:
        """One of the council's own cases: the draft report, the proposed team, deadlines."""
        user = site.require(request, [Role.COUNCIL])
        council = _council_of(user)
        if not is_case_id(case_id):
            raise PageRefused(404, NOT_FOUND)
        try:
            case = await asyncio.to_thread(case_of_council, store, council, case_id)
        except ProjectionBroken as broken:
            return unavailable(request, broken)
        if case is None:
            raise PageRefused(404, NOT_FOUND)
        councils = await asyncio.to_thread(known_councils, store)
        state = case.state
        dues = _dues(state)
        team = state.proposed_team or state.team
        named = {p.peer_id: p.name for p in (*state.proposed_team, *state.team)}
        return site.page(
            request, "council/case.html", title=f"Case {case_id}", user=user,
            case=case, state=state, duty=duty_of(state, dues), deadlines=deadlines_of(state, dues),
            team=[(p, _place(councils, p.home_council)) for p in team],
            team_is_proposed=bool(state.proposed_team),
            objections=[(named.get(o.peer_id, o.peer_id), o) for o in state.objections],
            lapsed_check=DeadlineName.FACTUAL_ACCURACY_CHECK in state.missed_deadlines,
            notices=await asyncio.to_thread(_notices, site, case_id))

    return routes
