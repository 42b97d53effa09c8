"""Deadlines and the escalation ladder (BRIEF §2), as pure functions of a case's state.

The workflow asks `next_due` when to wake next and, when that moment comes, asks `on_due`
what happened; the auditor can ask the same questions of a folded state. Months are taken as
days: 3 months = 91 days, 5 = 152, 10 = 304, 12 = 365.

Where a deadline counts from (`anchor`): in a case opened since business dates, from the end
(midnight UTC) of the business day of its step (the visit's last day, the day the draft was
sent), or from when that step was recorded if that is sooner (a visit recorded on its last
day, as demo deadlines of seconds need). So a visit recorded a week late has its report due
3 months after its real last day, and may already have lapsed when it is entered. A case
opened before counts from when the step was recorded, as it always did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
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
    reminders: tuple[timedelta, ...] = ()
    """How long before each deadline the council is reminded of it. None by default, so a
    policy recorded before reminders existed keeps meaning none; the standard policy sets
    STANDARD_REMINDERS."""

    def allowed(self, deadline: DeadlineName) -> timedelta:
        allowed: timedelta = getattr(self, deadline.value)
        return allowed


STANDARD_REMINDERS = (timedelta(days=14), timedelta(days=2))
"""Reminders by default: a fortnight and two days before each deadline (issue 19)."""


class DeadlinePolicy(BaseModel):
    """The rules for every kind of case: a default, and any kind that differs."""

    model_config = ConfigDict(frozen=True)

    default: DeadlineRules = Field(default_factory=DeadlineRules)
    by_kind: dict[CaseKind, DeadlineRules] = Field(default_factory=dict)

    def rules_for(self, kind: CaseKind | None) -> DeadlineRules:
        return self.by_kind.get(kind, self.default) if kind is not None else self.default

    @classmethod
    def standard(cls) -> DeadlinePolicy:
        """The LGA's published deadlines (BRIEF §2), with the standard reminders."""
        return cls(default=DeadlineRules(reminders=STANDARD_REMINDERS))

    @classmethod
    def demo(cls, seconds: int = 5) -> DeadlinePolicy:
        """Seconds instead of months, so a lapse escalates while you watch."""
        unit = timedelta(seconds=seconds)
        return cls(default=DeadlineRules(
            factual_accuracy_check=unit * 2, report_publication=unit * 3,
            action_plan_publication=unit * 6, progress_review=unit * 12,
            progress_review_publication=unit * 16, escalation_interval=unit,
            reminders=(unit,)))

    def without_reminders(self) -> DeadlinePolicy:
        """The same deadlines with no reminders: how a case started before reminders runs."""
        return DeadlinePolicy(
            default=self.default.model_copy(update={"reminders": ()}),
            by_kind={k: r.model_copy(update={"reminders": ()}) for k, r in self.by_kind.items()})


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
    action: Literal["lapse", "escalate", "remind"]
    notice_before: timedelta | None = None
    """For a reminder: how long before the deadline it is due."""


def anchor(state: CaseState, recorded_at: datetime | None, day: date | None) -> datetime | None:
    """When a deadline starts to run, for a step recorded at `recorded_at` that happened on
    business date `day` (see the module's docstring)."""
    if recorded_at is None or not state.business_dates or day is None:
        return recorded_at
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    return min(recorded_at, end_of_day)


def _awaited(state: CaseState) -> list[tuple[DeadlineName, datetime | None]]:
    """Deadlines still waiting for their step, with the time they count from."""
    awaited: list[tuple[DeadlineName, datetime | None]] = []
    if state.stage == Stage.REPORT_DRAFTED:
        awaited.append((DeadlineName.FACTUAL_ACCURACY_CHECK,
                        anchor(state, state.draft_sent_at, state.draft_sent_on)))
    visit = anchor(state, state.visit_recorded_at, state.visit_held_to)
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
        due_at = since + rules.allowed(deadline)
        upcoming.append(Due(deadline=deadline, due_at=due_at, action="lapse"))
        upcoming += _reminders(state, rules, deadline, since, due_at)
    for escalation in state.escalations:
        if escalation.level < TOP_LEVEL:
            upcoming.append(Due(deadline=escalation.deadline, action="escalate",
                                due_at=escalation.raised_at + rules.escalation_interval))
    return sorted(upcoming, key=lambda d: (d.due_at, d.deadline.value))


def _reminders(state: CaseState, rules: DeadlineRules, deadline: DeadlineName,
               since: datetime, due_at: datetime) -> list[Due]:
    """The reminders of one deadline still to give: those due after the deadline started to
    run (a fortnight's notice of a fortnight's deadline is no reminder) and giving shorter
    notice than any already given."""
    given = state.reminded_before(deadline)
    return [Due(deadline=deadline, due_at=due_at - before, action="remind",
                notice_before=before)
            for before in sorted(set(rules.reminders), reverse=True)
            if due_at - before > since and (given is None or before < given)]


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


def on_due(state: CaseState, due: Due, now: datetime | None = None,
           policy: DeadlinePolicy | None = None) -> list[ev.Event]:
    """What the engine records by itself when `due` arrives, acted on at `now` (when it is
    late: a worker was down). A late reminder gives way to the shortest notice already due,
    so a council is not sent a fortnight's reminder two days before; a reminder whose
    deadline has already passed is not sent at all: the lapse is recorded instead."""
    if due.action == "remind":
        return _remind(state, due, now or due.due_at, policy)
    if due.action == "lapse":
        missed = ev.DeadlineMissed(deadline=due.deadline, due_at=due.due_at)
        if due.deadline == DeadlineName.FACTUAL_ACCURACY_CHECK:
            draft = state.draft_report
            assert draft is not None
            final_on = due.due_at.date() if state.business_dates else None
            return [missed, ev.ReportMadeFinal(report_version=draft.report_version,
                                               document_sha256=draft.document_sha256,
                                               factual_accuracy_check="lapsed",
                                               made_final_on=final_on)]
        return [missed, _raise(state, due.deadline, 1)]
    current = state.escalation_for(due.deadline)
    assert current is not None
    return [_raise(state, due.deadline, current.level + 1)]


def _remind(state: CaseState, due: Due, now: datetime,
            policy: DeadlinePolicy | None) -> list[ev.Event]:
    assert due.notice_before is not None
    deadline_at = due.due_at + due.notice_before
    if now >= deadline_at:
        return on_due(state, Due(deadline=due.deadline, due_at=deadline_at, action="lapse"))
    notice = due.notice_before
    if policy is not None:
        shorter = [b for b in policy.rules_for(state.kind).reminders
                   if b < notice and deadline_at - b <= now]
        notice = min(shorter, default=notice)
    return [ev.DeadlineApproaching(deadline=due.deadline, due_at=deadline_at,
                                   notice_before=notice)]


def _raise(state: CaseState, deadline: DeadlineName, level: int) -> ev.EscalationRaised:
    recipient = LADDER[level].format(council=state.council)
    return ev.EscalationRaised(deadline=deadline, level=level, recipient=recipient)
