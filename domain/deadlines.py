"""Deadlines and the escalation ladder (BRIEF §2), as pure functions of a case's state.

The workflow asks `next_due` when to wake next and, when that moment comes, asks `on_due`
what happened; the auditor can ask the same questions of a folded state. Deadlines count
from when their anchoring step was recorded (the draft sent, the visit held), in workflow
time. Months are taken as days: 3 months = 91 days, 5 = 152, 10 = 304, 12 = 365.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain import events as ev
from domain.state import CaseState
from domain.vocabulary import CaseKind, DeadlineName, Stage

TOP_LEVEL = 3


class DeadlineRules(BaseModel):
    """How long each step may take, for one kind of case; each configurable."""

    model_config = ConfigDict(frozen=True)

    factual_accuracy_check: timedelta = timedelta(days=14)
    report_publication: timedelta = timedelta(days=91)
    action_plan_publication: timedelta = timedelta(days=152)
    progress_review: timedelta = timedelta(days=304)
    progress_review_publication: timedelta = timedelta(days=365)
    escalation_interval: timedelta = timedelta(days=14)

    def allowed(self, deadline: DeadlineName) -> timedelta:
        allowed: timedelta = getattr(self, deadline.value)
        return allowed


class DeadlinePolicy(BaseModel):
    """The rules for every kind of case: a default, and any kind that differs."""

    model_config = ConfigDict(frozen=True)

    default: DeadlineRules = Field(default_factory=DeadlineRules)
    by_kind: dict[CaseKind, DeadlineRules] = Field(default_factory=dict)

    def rules_for(self, kind: CaseKind | None) -> DeadlineRules:
        return self.by_kind.get(kind, self.default) if kind is not None else self.default

    @classmethod
    def demo(cls, seconds: int = 5) -> DeadlinePolicy:
        """Seconds instead of months, so a lapse escalates while you watch."""
        unit = timedelta(seconds=seconds)
        return cls(default=DeadlineRules(
            factual_accuracy_check=unit * 2, report_publication=unit * 3,
            action_plan_publication=unit * 6, progress_review=unit * 12,
            progress_review_publication=unit * 16, escalation_interval=unit))


LADDER = {
    1: "chief executive of {council}",
    2: "LGA principal adviser",
    3: "improvement board",
}
"""Who hears of a lapse at each level of the escalation ladder."""


class Due(BaseModel):
    """The next moment the case needs the engine to act by itself."""

    model_config = ConfigDict(frozen=True)

    deadline: DeadlineName
    due_at: datetime
    action: Literal["lapse", "escalate"]


def _awaited(state: CaseState) -> list[tuple[DeadlineName, datetime | None]]:
    """Deadlines still waiting for their step, with the time they count from."""
    awaited: list[tuple[DeadlineName, datetime | None]] = []
    if state.stage == Stage.REPORT_DRAFTED:
        awaited.append((DeadlineName.FACTUAL_ACCURACY_CHECK, state.draft_sent_at))
    visit = state.visit_recorded_at
    for deadline, done in (
        (DeadlineName.REPORT_PUBLICATION, state.report_published_on),
        (DeadlineName.ACTION_PLAN_PUBLICATION, state.action_plan_published_on),
        (DeadlineName.PROGRESS_REVIEW, state.progress_review_held_on),
        (DeadlineName.PROGRESS_REVIEW_PUBLICATION, state.progress_review_published_on),
    ):
        if visit is not None and done is None:
            awaited.append((deadline, visit))
    return awaited


def pending(state: CaseState, policy: DeadlinePolicy) -> list[Due]:
    """Every timed action still ahead of an open case, soonest first."""
    if not state.is_open:
        return []
    rules = policy.rules_for(state.kind)
    upcoming: list[Due] = []
    for deadline, since in _awaited(state):
        if deadline in state.missed_deadlines or since is None:
            continue
        upcoming.append(Due(deadline=deadline, due_at=since + rules.allowed(deadline),
                            action="lapse"))
    for escalation in state.escalations:
        if escalation.level < TOP_LEVEL:
            upcoming.append(Due(deadline=escalation.deadline, action="escalate",
                                due_at=escalation.raised_at + rules.escalation_interval))
    return sorted(upcoming, key=lambda d: (d.due_at, d.deadline.value))


def next_due(state: CaseState, policy: DeadlinePolicy) -> Due | None:
    return soonest(pending(state, policy))


def next_deadline(state: CaseState, policy: DeadlinePolicy) -> Due | None:
    """The soonest deadline the council still has to meet (lapses only, not ladder steps)."""
    return soonest_lapse(pending(state, policy))


def soonest(dues: Sequence[Due]) -> Due | None:
    """The first of `pending`'s answer: what the engine acts on next."""
    return dues[0] if dues else None


def soonest_lapse(dues: Sequence[Due]) -> Due | None:
    """The first deadline in `pending`'s answer that the council must meet."""
    return next((d for d in dues if d.action == "lapse"), None)


def on_due(state: CaseState, due: Due) -> list[ev.Event]:
    """What the engine records by itself when `due` arrives."""
    if due.action == "lapse":
        missed = ev.DeadlineMissed(deadline=due.deadline, due_at=due.due_at)
        if due.deadline == DeadlineName.FACTUAL_ACCURACY_CHECK:
            draft = state.draft_report
            assert draft is not None
            return [missed, ev.ReportMadeFinal(report_version=draft.report_version,
                                               document_sha256=draft.document_sha256,
                                               factual_accuracy_check="lapsed")]
        return [missed, _raise(state, due.deadline, 1)]
    current = state.escalation_for(due.deadline)
    assert current is not None
    return [_raise(state, due.deadline, current.level + 1)]


def _raise(state: CaseState, deadline: DeadlineName, level: int) -> ev.EscalationRaised:
    recipient = LADDER[level].format(council=state.council)
    return ev.EscalationRaised(deadline=deadline, level=level, recipient=recipient)
