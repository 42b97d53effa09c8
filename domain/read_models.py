"""What the read models say about a case and a council, as pure functions of folded state.

The projector (eventstore/projections.py) feeds each case's events through `domain.state`'s
fold and stores what `case_summary` says of the result; a council's summary is worked out
from its corporate cases' summaries by `council_summary`. The workflow, the auditor and the
read models so fold with the same code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.deadlines import DeadlinePolicy, DeadlineRules, next_deadline
from domain.policies import PolicyBook, UnknownPolicy
from domain.state import CaseState
from domain.vocabulary import CaseKind

REPORT_DAYS = DeadlineRules().report_publication.days
"""A report is published on time up to 91 days (3 months) after the visit's last day: the
standard deadline's own figure."""
ACTION_PLAN_DAYS = DeadlineRules().action_plan_publication.days
"""An action plan up to 152 days (5 months) after it."""
NEXT_CHALLENGE_YEARS = 5


class CaseSummary(BaseModel):
    """One row of `case_summaries`, without the state it was worked out from."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    council: str
    kind: str
    stage: str
    requested_on: date | None
    visit_started_on: date | None
    visit_ended_on: date | None
    report_final_on: date | None
    report_published_on: date | None
    action_plan_published_on: date | None
    progress_review_on: date | None
    progress_review_published_on: date | None
    report_url: str | None = None
    action_plan_url: str | None = None
    progress_review_url: str | None = None
    next_deadline: str | None
    next_deadline_at: datetime | None
    escalation_level: int
    imported: bool
    requested_by: str | None = None
    """Who asked for the case: an officer's dashboard finds theirs by it."""
    awaiting_approval: int = 0
    """Sensitive requests waiting for a second person: the dashboard finds them by it."""


def policy_of(state: CaseState, book: PolicyBook) -> DeadlinePolicy | None:
    """The deadline policy the case runs by, by the name its request recorded (None when
    this server does not know that name: its next deadline is then not shown)."""
    if state.deadline_policy is None:
        return DeadlinePolicy.standard()
    try:
        return book.resolve(state.deadline_policy)
    except UnknownPolicy:
        return None


def case_summary(state: CaseState, book: PolicyBook) -> CaseSummary:
    """The summary row of a case that has been requested."""
    assert state.council is not None and state.kind is not None and state.stage is not None
    policy = policy_of(state, book)
    due = next_deadline(state, policy) if policy is not None else None
    return CaseSummary(
        case_id=state.case_id, council=state.council, kind=state.kind.value,
        stage=state.stage.value, requested_on=state.requested_on,
        visit_started_on=state.visit_held_from, visit_ended_on=state.visit_held_to,
        report_final_on=state.report_final_on, report_published_on=state.report_published_on,
        action_plan_published_on=state.action_plan_published_on,
        progress_review_on=state.progress_review_held_on,
        progress_review_published_on=state.progress_review_published_on,
        report_url=state.report_url, action_plan_url=state.action_plan_url,
        progress_review_url=state.progress_review_url,
        next_deadline=due.deadline.value if due is not None else None,
        next_deadline_at=due.due_at if due is not None else None,
        escalation_level=max((e.level for e in state.escalations), default=0),
        imported=state.imported_events > 0, requested_by=state.requested_by,
        awaiting_approval=len(state.awaiting_approval))


def years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def council_summary(gss_code: str, cases: Iterable[CaseSummary]) -> dict[str, Any] | None:
    """A council's row of `council_summaries`, from the summaries of its cases: its last
    corporate peer challenge (the latest visit's last day; ties by case id), when its report
    and action plan were due and published, and when the next one is due. None when it has
    had no corporate visit."""
    visited = [c for c in cases if c.kind == CaseKind.CORPORATE_PEER_CHALLENGE.value
               and c.visit_ended_on is not None]
    if not visited:
        return None
    last = max(visited, key=lambda c: (c.visit_ended_on, c.case_id))
    ended = last.visit_ended_on
    assert ended is not None
    return {
        "gss_code": gss_code, "last_case_id": last.case_id, "visit_ended_on": ended,
        "report_due_on": ended + timedelta(days=REPORT_DAYS),
        "report_published_on": last.report_published_on,
        "action_plan_due_on": ended + timedelta(days=ACTION_PLAN_DAYS),
        "action_plan_published_on": last.action_plan_published_on,
        "progress_review_on": last.progress_review_on,
        "progress_review_published_on": last.progress_review_published_on,
        "report_url": last.report_url, "action_plan_url": last.action_plan_url,
        "progress_review_url": last.progress_review_url,
        "next_due_on": years_after(ended, NEXT_CHALLENGE_YEARS),
        "corporate_challenges": len(visited),
    }


def days_late(published_on: date | None, due_on: date, today: date) -> int | None:
    """Days after `due_on` it was published (0 on time); unpublished, days overdue by `today`
    (0 while not yet due). None only for an unpublished step not yet due."""
    if published_on is not None:
        return max(0, (published_on - due_on).days)
    return (today - due_on).days if today > due_on else None
