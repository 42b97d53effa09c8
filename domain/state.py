"""CaseState: a case as the fold of its events. The workflow and the auditor both use `fold`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.recorded import Recorded
from domain.vocabulary import CaseKind, DeadlineName, Stage, VisitMode


class ReportVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    report_version: int
    document_sha256: str
    status: Literal["draft", "final"]
    correction_reason: str | None = None


class Objection(BaseModel):
    model_config = ConfigDict(frozen=True)

    peer_id: str
    reason: str
    actor: str


class OpenEscalation(BaseModel):
    model_config = ConfigDict(frozen=True)

    deadline: DeadlineName
    level: int
    raised_at: datetime


class AwaitingApproval(BaseModel):
    """A sensitive request that takes effect only when a second person approves it."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    action: str
    command: dict[str, Any]
    requested_by: str
    requested_at: datetime


class CaseState(BaseModel):
    """Everything the rules need to know about one case; never mutated, only refolded."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = 0
    stage: Stage | None = None
    council: str | None = None
    kind: CaseKind | None = None
    reason: str | None = None
    scope: tuple[str, ...] = ()
    budget_gap_pence: int | None = None
    requested_at: datetime | None = None
    requested_by: str | None = None
    """Who asked for the case (the request's actor): an officer's dashboard lists theirs."""
    requested_on: date | None = None
    """The business date of the request: the day it was made (for a case opened before
    business dates, or when none was given, the day it was recorded)."""
    business_dates: bool = False
    """The case's deadlines count from the dates things happened (the visit's last day, the
    day the draft was sent), not from when they were recorded; the rules check those dates
    against each other. Recorded in the request of every case opened since business dates."""
    imported_events: int = 0
    """How many of the case's first events were imported from a file of past challenges."""
    visit_mode: VisitMode | None = None
    proposed_team: tuple[ev.PeerPlace, ...] = ()
    team_selected_by: Literal["engine", "officer"] | None = None
    selection: ev.PeerSelectionRecord | None = None
    """The engine's inputs for the team on the table (None when an officer picked it)."""
    selection_problem: str | None = None
    """Why the engine's last selection could not fill the team, until a team is proposed."""
    objections: tuple[Objection, ...] = ()
    team: tuple[ev.PeerPlace, ...] = ()
    visit_starts_on: date | None = None
    visit_ends_on: date | None = None
    visit_held_from: date | None = None
    visit_held_to: date | None = None
    visit_recorded_at: datetime | None = None
    """When the visit was recorded: the deadlines after the visit count from here."""
    feedback_given_on: date | None = None
    reports: tuple[ReportVersion, ...] = ()
    draft_sent_on: date | None = None
    draft_sent_at: datetime | None = None
    report_final_on: date | None = None
    """The business date the report was made final (its first final version)."""
    factual_accuracy_comments: tuple[str, ...] = ()
    report_published_on: date | None = None
    report_url: str | None = None
    action_plan_published_on: date | None = None
    action_plan_url: str | None = None
    progress_review_held_on: date | None = None
    progress_review_published_on: date | None = None
    progress_review_url: str | None = None
    """Where each publication is, as the council recorded it (None: not given, on import)."""
    missed_deadlines: tuple[DeadlineName, ...] = ()
    missed_due_at: tuple[tuple[DeadlineName, datetime], ...] = ()
    """When each missed deadline fell due: what its escalations' notices say."""
    reminded: tuple[tuple[DeadlineName, timedelta], ...] = ()
    """Per deadline, the shortest notice its reminders have given so far: the reminders due
    before that one are spent."""
    escalations: tuple[OpenEscalation, ...] = ()
    escalations_raised: int = 0
    """Escalations opened (a lapse reaching level 1); climbing the ladder is the same one."""
    escalations_resolved: int = 0
    withdrawal_reason: str | None = None
    last_event_at: datetime | None = None
    deadline_policy: str | None = None
    """The name of the server's deadline policy the case runs by (None before named ones)."""
    four_eyes: bool = False
    """Sensitive actions wait for a second person's approval (cases opened since the rule)."""
    awaiting_approval: tuple[AwaitingApproval, ...] = ()

    def awaiting(self, request_id: str) -> AwaitingApproval | None:
        return next((a for a in self.awaiting_approval if a.request_id == request_id), None)

    @property
    def is_open(self) -> bool:
        return self.stage is not None and self.stage.is_open

    @property
    def final_report(self) -> ReportVersion | None:
        """The newest final version (a correction supersedes, the older stays visible)."""
        finals = [r for r in self.reports if r.status == "final"]
        return finals[-1] if finals else None

    @property
    def draft_report(self) -> ReportVersion | None:
        drafts = [r for r in self.reports if r.status == "draft"]
        return drafts[-1] if drafts else None

    def missed_due(self, deadline: DeadlineName) -> datetime | None:
        """When `deadline` fell due, if it was missed."""
        return next((at for name, at in self.missed_due_at if name == deadline), None)

    def reminded_before(self, deadline: DeadlineName) -> timedelta | None:
        """How long before `deadline` the latest reminder of it was due (None: no reminder
        yet)."""
        return next((before for name, before in self.reminded if name == deadline), None)

    def escalation_for(self, deadline: DeadlineName) -> OpenEscalation | None:
        return next((e for e in self.escalations if e.deadline == deadline), None)


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of a recorded time (a naive time is taken as UTC)."""
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).date()


E = TypeVar("E", bound=ev.Event)
_Folder = Callable[[CaseState, Any, Recorded], dict[str, Any]]
_FOLDS: dict[type[ev.Event], _Folder] = {}


def _folds(event_type: type[E]) -> Callable[[Callable[[CaseState, E, Recorded], dict[str, Any]]],
                                             Callable[[CaseState, E, Recorded], dict[str, Any]]]:
    def register(
        function: Callable[[CaseState, E, Recorded], dict[str, Any]],
    ) -> Callable[[CaseState, E, Recorded], dict[str, Any]]:
        _FOLDS[event_type] = function
        return function

    return register


@_folds(ev.CaseRequested)
def _requested(s: CaseState, e: ev.CaseRequested, r: Recorded) -> dict[str, Any]:
    return {
        "stage": Stage.REQUESTED, "council": e.council, "kind": e.kind, "reason": e.reason,
        "scope": tuple(e.scope), "budget_gap_pence": e.budget_gap_pence,
        "requested_at": r.occurred_at, "requested_by": r.actor,
        "deadline_policy": e.deadline_policy,
        "four_eyes": e.four_eyes, "requested_on": e.requested_on or utc_day(r.occurred_at),
        "business_dates": e.business_dates,
        "imported_events": e.imported.events if e.imported is not None else 0,
    }


@_folds(ev.CaseScoped)
def _scoped(s: CaseState, e: ev.CaseScoped, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.SCOPED, "scope": tuple(e.scope), "visit_mode": e.visit_mode}


@_folds(ev.PeerTeamProposed)
def _proposed(s: CaseState, e: ev.PeerTeamProposed, r: Recorded) -> dict[str, Any]:
    return {"proposed_team": tuple(e.team), "team_selected_by": e.selected_by,
            "selection": e.selection, "selection_problem": None}


@_folds(ev.PeerTeamCannotBeFilled)
def _unfilled(s: CaseState, e: ev.PeerTeamCannotBeFilled, r: Recorded) -> dict[str, Any]:
    return {"selection_problem": f"{e.requirement}: {e.reason}"}


@_folds(ev.PeerObjectedTo)
def _objected(s: CaseState, e: ev.PeerObjectedTo, r: Recorded) -> dict[str, Any]:
    objection = Objection(peer_id=e.peer_id, reason=e.reason, actor=r.actor)
    return {"objections": (*s.objections, objection)}


@_folds(ev.PeerTeamConfirmed)
def _confirmed(s: CaseState, e: ev.PeerTeamConfirmed, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.PEERS_SELECTED, "team": tuple(e.team), "proposed_team": ()}


@_folds(ev.VisitScheduled)
def _visit_scheduled(s: CaseState, e: ev.VisitScheduled, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.VISIT_SCHEDULED, "visit_mode": e.mode,
            "visit_starts_on": e.starts_on, "visit_ends_on": e.ends_on}


@_folds(ev.VisitHeld)
def _visit_held(s: CaseState, e: ev.VisitHeld, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.VISITED, "visit_mode": e.mode, "visit_held_from": e.started_on,
            "visit_held_to": e.ended_on, "visit_recorded_at": r.occurred_at}


@_folds(ev.FeedbackGiven)
def _feedback(s: CaseState, e: ev.FeedbackGiven, r: Recorded) -> dict[str, Any]:
    return {"feedback_given_on": e.given_on}


@_folds(ev.ReportDrafted)
def _drafted(s: CaseState, e: ev.ReportDrafted, r: Recorded) -> dict[str, Any]:
    draft = ReportVersion(report_version=e.report_version,
                          document_sha256=e.document_sha256, status="draft")
    return {"stage": Stage.REPORT_DRAFTED, "reports": (*s.reports, draft),
            "draft_sent_on": e.sent_on, "draft_sent_at": r.occurred_at}


@_folds(ev.FactualAccuracyCommentsReceived)
def _comments(s: CaseState, e: ev.FactualAccuracyCommentsReceived, r: Recorded) -> dict[str, Any]:
    return {"factual_accuracy_comments": (*s.factual_accuracy_comments, e.comments)}


@_folds(ev.ReportMadeFinal)
def _final(s: CaseState, e: ev.ReportMadeFinal, r: Recorded) -> dict[str, Any]:
    final = ReportVersion(report_version=e.report_version,
                          document_sha256=e.document_sha256, status="final")
    others = tuple(x for x in s.reports if x.report_version != e.report_version)
    return {"stage": Stage.REPORT_FINAL, "reports": (*others, final),
            "report_final_on": s.report_final_on or e.made_final_on or utc_day(r.occurred_at)}


@_folds(ev.ReportCorrected)
def _corrected(s: CaseState, e: ev.ReportCorrected, r: Recorded) -> dict[str, Any]:
    correction = ReportVersion(report_version=e.report_version,
                               document_sha256=e.document_sha256, status="final",
                               correction_reason=e.reason)
    return {"reports": (*s.reports, correction)}


@_folds(ev.ReportPublished)
def _published(s: CaseState, e: ev.ReportPublished, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.REPORT_PUBLISHED, "report_published_on": e.published_on,
            "report_url": e.url}


@_folds(ev.ActionPlanPublished)
def _action_plan(s: CaseState, e: ev.ActionPlanPublished, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.ACTION_PLAN_PUBLISHED, "action_plan_published_on": e.published_on,
            "action_plan_url": e.url}


@_folds(ev.ProgressReviewHeld)
def _review_held(s: CaseState, e: ev.ProgressReviewHeld, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.PROGRESS_REVIEW_HELD, "progress_review_held_on": e.ended_on}


@_folds(ev.ProgressReviewPublished)
def _review_published(s: CaseState, e: ev.ProgressReviewPublished, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.PROGRESS_REVIEW_PUBLISHED,
            "progress_review_published_on": e.published_on, "progress_review_url": e.url}


@_folds(ev.DeadlineApproaching)
def _approaching(s: CaseState, e: ev.DeadlineApproaching, r: Recorded) -> dict[str, Any]:
    others = tuple(x for x in s.reminded if x[0] != e.deadline)
    return {"reminded": (*others, (e.deadline, e.notice_before))}


@_folds(ev.DeadlineMissed)
def _missed(s: CaseState, e: ev.DeadlineMissed, r: Recorded) -> dict[str, Any]:
    return {"missed_deadlines": (*s.missed_deadlines, e.deadline),
            "missed_due_at": (*s.missed_due_at, (e.deadline, e.due_at))}


@_folds(ev.EscalationRaised)
def _raised(s: CaseState, e: ev.EscalationRaised, r: Recorded) -> dict[str, Any]:
    others = tuple(x for x in s.escalations if x.deadline != e.deadline)
    opened = OpenEscalation(deadline=e.deadline, level=e.level, raised_at=r.occurred_at)
    raised = s.escalations_raised + (1 if e.level == 1 else 0)
    return {"escalations": (*others, opened), "escalations_raised": raised}


@_folds(ev.EscalationResolved)
def _resolved(s: CaseState, e: ev.EscalationResolved, r: Recorded) -> dict[str, Any]:
    return {"escalations": tuple(x for x in s.escalations if x.deadline != e.deadline),
            "escalations_resolved": s.escalations_resolved + 1}


@_folds(ev.ApprovalRequested)
def _approval_requested(s: CaseState, e: ev.ApprovalRequested, r: Recorded) -> dict[str, Any]:
    waiting = AwaitingApproval(request_id=e.request_id, action=e.action, command=e.command,
                               requested_by=r.actor, requested_at=r.occurred_at)
    return {"awaiting_approval": (*s.awaiting_approval, waiting)}


@_folds(ev.RequestApproved)
def _request_approved(s: CaseState, e: ev.RequestApproved, r: Recorded) -> dict[str, Any]:
    return {"awaiting_approval": tuple(a for a in s.awaiting_approval
                                       if a.request_id != e.request_id)}


@_folds(ev.RequestDeclined)
def _request_declined(s: CaseState, e: ev.RequestDeclined, r: Recorded) -> dict[str, Any]:
    return {"awaiting_approval": tuple(a for a in s.awaiting_approval
                                       if a.request_id != e.request_id)}


@_folds(ev.CaseWithdrawn)
def _withdrawn(s: CaseState, e: ev.CaseWithdrawn, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.WITHDRAWN, "withdrawal_reason": e.reason, "escalations": ()}


@_folds(ev.CaseClosed)
def _closed(s: CaseState, e: ev.CaseClosed, r: Recorded) -> dict[str, Any]:
    return {"stage": Stage.CLOSED}


STAGE_AFTER_EVENT: dict[str, Stage] = {
    ev.CaseRequested.type_name(): Stage.REQUESTED, ev.CaseScoped.type_name(): Stage.SCOPED,
    ev.PeerTeamConfirmed.type_name(): Stage.PEERS_SELECTED,
    ev.VisitScheduled.type_name(): Stage.VISIT_SCHEDULED, ev.VisitHeld.type_name(): Stage.VISITED,
    ev.ReportDrafted.type_name(): Stage.REPORT_DRAFTED,
    ev.ReportMadeFinal.type_name(): Stage.REPORT_FINAL,
    ev.ReportPublished.type_name(): Stage.REPORT_PUBLISHED,
    ev.ActionPlanPublished.type_name(): Stage.ACTION_PLAN_PUBLISHED,
    ev.ProgressReviewHeld.type_name(): Stage.PROGRESS_REVIEW_HELD,
    ev.ProgressReviewPublished.type_name(): Stage.PROGRESS_REVIEW_PUBLISHED,
    ev.CaseClosed.type_name(): Stage.CLOSED, ev.CaseWithdrawn.type_name(): Stage.WITHDRAWN,
}
"""The event types whose folds above move a case to a stage, by stored type name; every other
event leaves the stage as it was. So a case stands at the stage of the newest of these: what a
reader of the events table alone (the metrics' count by stage) needs, without folding."""


class OutOfOrder(ValueError):
    pass


def apply(state: CaseState, recorded: Recorded) -> CaseState:
    """The state after one more event. Refuses an event that is not the next version."""
    if recorded.case_id != state.case_id:
        raise OutOfOrder(f"event of case {recorded.case_id} folded into case {state.case_id}")
    if recorded.version != state.version + 1:
        raise OutOfOrder(
            f"case {state.case_id}: expected version {state.version + 1}, got {recorded.version}"
        )
    changes = _FOLDS[type(recorded.event)](state, recorded.event, recorded)
    return state.model_copy(
        update={**changes, "version": recorded.version, "last_event_at": recorded.occurred_at}
    )


def fold(case_id: str, history: Iterable[Recorded]) -> CaseState:
    """A case as it stands after `history` (its events in version order)."""
    state = CaseState(case_id=case_id)
    for recorded in history:
        state = apply(state, recorded)
    return state


def _every_event_type_folds() -> None:
    missing = {c for c in ev.EVENT_CLASSES.values() if c.case_event} - set(_FOLDS)
    if missing:
        raise RuntimeError(f"no fold for {sorted(c.__name__ for c in missing)}")


_every_event_type_folds()
