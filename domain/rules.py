"""The rules of the journey: accept a command as the events it causes, or refuse it plainly.

`decide` is pure. A refusal raises `CommandRefused` with a message a case officer can act on:
it names the case, the stage it is at and what to do next. Nothing is recorded for a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from domain import commands as cmd
from domain import events as ev
from domain.actors import parse_actor
from domain.checkpoints import CHECKPOINT_STREAM
from domain.peer_selection import seed_for_case
from domain.peers import SelectionRules
from domain.permissions import SENSITIVE, NotPermitted, check_permitted
from domain.state import CaseState
from domain.vocabulary import CaseKind, DeadlineName, Stage

MAX_VISIT_DAYS = 14
EARLIEST_REQUEST = date(1990, 1, 1)
SCHEDULE_HORIZON = timedelta(days=2 * 366)


class CommandRefused(ValueError):
    """A command the rules do not accept; nothing was recorded."""

    def __init__(self, state: CaseState, message: str) -> None:
        where = state.stage.label if state.stage else "not started"
        super().__init__(f"case {state.case_id} ({where}): {message}")
        self.case_id = state.case_id
        self.stage = state.stage
        self.reason = message


class SelectionInputs(BaseModel):
    """What the selection activity needs from the case; it adds the pool (the current one,
    unless `pool_version` names the pool a re-selection must keep to)."""

    model_config = ConfigDict(frozen=True)

    council: str
    kind: CaseKind
    scope: list[str]
    visit_from: date
    visit_to: date
    seed: int
    excluded: list[str]
    rules: SelectionRules = SelectionRules()
    pool_version: int | None = None


class CommandNotPermitted(CommandRefused):
    """The role table refused: this actor's role may not do this, or not on this case."""


class NotThisCase(CommandRefused):
    """The command names another case than the one it reached (an older case of the slot)."""


C = TypeVar("C", bound=cmd.Command)
_Rule = Callable[[CaseState, Any, datetime], list[ev.Event]]
_RULES: dict[type[cmd.Command], _Rule] = {}


def _rule(command_type: type[C]) -> Callable[[Callable[[CaseState, C, datetime], list[ev.Event]]],
                                             Callable[[CaseState, C, datetime], list[ev.Event]]]:
    def register(
        function: Callable[[CaseState, C, datetime], list[ev.Event]],
    ) -> Callable[[CaseState, C, datetime], list[ev.Event]]:
        _RULES[command_type] = function
        return function

    return register


def decide(state: CaseState, command: cmd.Command, now: datetime) -> list[ev.Event]:
    """The events `command` causes on `state` at `now`, or `CommandRefused`."""
    if not isinstance(command, cmd.RequestCase):
        if command.case_id is not None and command.case_id != state.case_id:
            raise NotThisCase(state, f"this action is for case {command.case_id}, not this one")
        if state.stage is None:
            raise CommandRefused(state, "no such case has been requested; start it first")
        if not state.stage.is_open:
            raise CommandRefused(
                state, f"the case is {state.stage.label}; nothing more can be recorded on it"
            )
    council = command.council if isinstance(command, cmd.RequestCase) else state.council
    try:
        check_permitted(command, council)
    except NotPermitted as refused:
        raise CommandNotPermitted(state, str(refused)) from None
    action = str(getattr(command, "action"))  # noqa: B009
    if state.four_eyes and action in SENSITIVE:
        return [_approval_requested(state, command, action, now)]
    return _RULES[type(command)](state, command, now)


_COMMAND: TypeAdapter[cmd.AnyCommand] = TypeAdapter(cmd.AnyCommand)


def _approval_requested(state: CaseState, command: cmd.Command, action: str,
                        now: datetime) -> ev.ApprovalRequested:
    """A sensitive action is recorded as a request: checked now as if it took effect (so a
    request that could never be approved is refused at once), applied only on approval."""
    for waiting in state.awaiting_approval:
        if waiting.action == action:
            raise CommandRefused(
                state, f"a request to {action.replace('_', ' ')} ({waiting.request_id}, by "
                f"{waiting.requested_by}) already waits for approval; approve or decline it "
                "first")
    _RULES[type(command)](state, command, now)
    asked = command.model_dump(mode="json", exclude={"actor", "case_id"})
    return ev.ApprovalRequested(request_id=approval_request_id(action, state.version + 1),
                                action=action, command=asked)


def approval_request_id(action: str, version: int) -> str:
    """`propose-team-3`: the action, and the case version its request is recorded at (so it
    is unique in the case, and the same on every retry)."""
    return f"{action.replace('_', '-')}-{version}"


def _need_stage(state: CaseState, doing: str, *stages: Stage, hint: str = "") -> None:
    if state.stage not in stages:
        wanted = " or ".join(s.label for s in stages)
        extra = f"; {hint}" if hint else ""
        raise CommandRefused(state, f"cannot {doing}: the case must be {wanted}{extra}")


Bound = tuple[date, str] | date | None
"""A limit on a business date: the date, with the words that say what it is (`the case was
requested`); a bare date is named by itself."""
TODAY = "today"


def _need_dates(state: CaseState, doing: str, first: date, last: date, *,
                not_before: Bound, not_after: Bound, hint: str = "") -> None:
    """The rule's words name the limit broken: `2026-12-05 is in the future (today is …)`,
    `2026-11-01 is before the case was requested (2026-11-10)`."""
    if last < first:
        raise CommandRefused(state, f"cannot {doing}: it ends ({last}) before it starts ({first})")
    extra = f"; {hint}" if hint else ""
    if not_before is not None:
        limit, words = not_before if isinstance(not_before, tuple) else (not_before, "")
        if first < limit:
            said = f"before {words} ({limit})" if words else f"before {limit}"
            raise CommandRefused(state, f"cannot {doing}: {first} is {said}{extra}")
    if not_after is not None:
        limit, words = not_after if isinstance(not_after, tuple) else (not_after, "")
        if last > limit:
            said = (f"in the future (today is {limit})" if words == TODAY
                    else f"after {words} ({limit})" if words else f"after {limit}")
            raise CommandRefused(state, f"cannot {doing}: {last} is {said}")


def _today(now: datetime) -> tuple[date, str]:
    """No business date is in the future."""
    return now.date(), TODAY


def _requested(state: CaseState) -> tuple[date, str]:
    assert state.requested_on is not None
    return state.requested_on, "the case was requested"


def _resolving(state: CaseState, deadline: DeadlineName) -> list[ev.Event]:
    """Compliance with a deadline that has climbed the ladder steps it down."""
    open_escalation = state.escalation_for(deadline)
    if open_escalation is None:
        return []
    return [ev.EscalationResolved(deadline=deadline, level=open_escalation.level)]


def _visit_end(state: CaseState) -> date:
    assert state.visit_held_to is not None
    return state.visit_held_to


@_rule(cmd.RequestCase)
def _request(state: CaseState, c: cmd.RequestCase, now: datetime) -> list[ev.Event]:
    if state.stage is not None:
        raise CommandRefused(state, "this case already exists; choose another case id")
    if c.case_id != state.case_id:
        raise CommandRefused(state, f"the command is for case {c.case_id}, not this one")
    if c.case_id == CHECKPOINT_STREAM:
        raise CommandRefused(state, f"{CHECKPOINT_STREAM!r} names the checkpoint stream")
    if c.requested_on is not None:
        _need_dates(state, "request the case", c.requested_on, c.requested_on,
                    not_before=(EARLIEST_REQUEST, "the earliest date taken"),
                    not_after=_today(now))
    requested_on = (c.requested_on or now.date()) if c.business_dates else None
    return [ev.CaseRequested(council=c.council, kind=c.kind, reason=c.reason, scope=c.scope,
                             budget_gap_pence=c.budget_gap_pence,
                             # the terms are recorded only when the workflow set them
                             deadline_policy=c.deadline_policy if c.four_eyes else None,
                             selection_rules=c.selection_rules, four_eyes=c.four_eyes,
                             requested_on=requested_on, business_dates=c.business_dates)]


@_rule(cmd.ScopeCase)
def _scope(state: CaseState, c: cmd.ScopeCase, now: datetime) -> list[ev.Event]:
    _need_stage(state, "scope the case", Stage.REQUESTED)
    return [ev.CaseScoped(scope=c.scope, visit_mode=c.visit_mode)]


@_rule(cmd.SelectPeerTeam)
def _select(state: CaseState, c: cmd.SelectPeerTeam, now: datetime) -> list[ev.Event]:
    """Checks only: the events come from the pool, through `selection_inputs` and the
    selection activity, then `check_proposal`."""
    _need_stage(state, "select a peer team", Stage.SCOPED, hint="scope it first")
    today = now.date()
    _need_dates(state, "select a peer team", c.visit_from, c.visit_to,
                not_before=_requested(state) if state.business_dates else today,
                not_after=today + SCHEDULE_HORIZON)
    if (c.visit_to - c.visit_from).days + 1 > MAX_VISIT_DAYS:
        raise CommandRefused(state, f"cannot select a team for a visit longer than "
                                    f"{MAX_VISIT_DAYS} days")
    return []


def selection_inputs(state: CaseState, visit_from: date, visit_to: date,
                     rules: SelectionRules | None = None) -> SelectionInputs:
    """What the engine selects with for this case: its scope, the visit dates, the case's
    fixed seed, every peer the council has objected to, and the case's selection rules."""
    assert state.council is not None and state.kind is not None
    return SelectionInputs(
        council=state.council, kind=state.kind, scope=list(state.scope),
        visit_from=visit_from, visit_to=visit_to, seed=seed_for_case(state.case_id),
        excluded=sorted({o.peer_id for o in state.objections}),
        rules=rules or SelectionRules())


def reselection_inputs(state: CaseState) -> SelectionInputs | None:
    """After an objection to an engine-selected team: the same inputs, same seed, same pool,
    the objected peers excluded. None when the team on the table was hand-picked."""
    record = state.selection
    if record is None or not state.proposed_team:
        return None
    inputs = selection_inputs(state, record.visit_from, record.visit_to)
    return inputs.model_copy(update={"scope": list(record.scope), "rules": record.rules,
                                     "pool_version": record.pool_version,
                                     "excluded": sorted({*record.excluded, *inputs.excluded})})


def check_proposal(state: CaseState, team: list[ev.PeerPlace]) -> None:
    """Rules every proposed team keeps, however it was chosen."""
    seen: set[str] = set()
    objected = {o.peer_id for o in state.objections}
    for place in team:
        if place.peer_id in seen:
            raise CommandRefused(state, f"cannot propose: peer {place.peer_id} appears twice")
        seen.add(place.peer_id)
        if place.home_council is not None and place.home_council == state.council:
            raise CommandRefused(
                state, f"cannot propose peer {place.peer_id}: peers must come from other "
                f"councils, and {place.name} is from {state.council}")
        if place.peer_id in objected:
            raise CommandRefused(
                state, f"cannot propose peer {place.peer_id}: the council objected to them; "
                "choose someone else")


@_rule(cmd.ProposePeerTeam)
def _propose(state: CaseState, c: cmd.ProposePeerTeam, now: datetime) -> list[ev.Event]:
    _need_stage(state, "propose a peer team", Stage.SCOPED, hint="scope it first")
    check_proposal(state, c.team)
    return [ev.PeerTeamProposed(team=c.team, rationale=c.rationale, selected_by="officer")]


@_rule(cmd.ObjectToPeer)
def _object(state: CaseState, c: cmd.ObjectToPeer, now: datetime) -> list[ev.Event]:
    _need_stage(state, "object to a peer", Stage.SCOPED)
    if c.peer_id not in {p.peer_id for p in state.proposed_team}:
        raise CommandRefused(
            state, f"cannot object to peer {c.peer_id}: they are not on the proposed team")
    return [ev.PeerObjectedTo(peer_id=c.peer_id, reason=c.reason)]


@_rule(cmd.ConfirmPeerTeam)
def _confirm(state: CaseState, c: cmd.ConfirmPeerTeam, now: datetime) -> list[ev.Event]:
    _need_stage(state, "confirm the peer team", Stage.SCOPED)
    if not state.proposed_team:
        raise CommandRefused(state, "cannot confirm: no peer team has been proposed yet")
    objected = {o.peer_id for o in state.objections}
    for place in state.proposed_team:
        if place.peer_id in objected:
            raise CommandRefused(
                state, f"cannot confirm: the council objected to peer {place.peer_id}; "
                "propose a team without them")
    if state.kind == CaseKind.CORPORATE_PEER_CHALLENGE:
        roles = {p.role for p in state.proposed_team}
        for needed in ("lead_member", "lead_officer"):
            if needed not in roles:
                raise CommandRefused(
                    state, f"cannot confirm: a corporate peer challenge needs a "
                    f"{needed.replace('_', ' ')} peer")
    return [ev.PeerTeamConfirmed(team=list(state.proposed_team))]


@_rule(cmd.ScheduleVisit)
def _schedule(state: CaseState, c: cmd.ScheduleVisit, now: datetime) -> list[ev.Event]:
    _need_stage(state, "schedule the visit", Stage.PEERS_SELECTED, Stage.VISIT_SCHEDULED,
                hint="confirm the peer team first")
    today = now.date()
    _need_dates(state, "schedule the visit", c.starts_on, c.ends_on,
                not_before=_requested(state) if state.business_dates else today,
                not_after=today + SCHEDULE_HORIZON)
    chosen_for = state.selection
    if chosen_for is not None and not (
            chosen_for.visit_from <= c.starts_on and c.ends_on <= chosen_for.visit_to):
        raise CommandRefused(
            state, f"cannot schedule the visit from {c.starts_on} to {c.ends_on}: the peer "
            f"team was selected as accredited and available from {chosen_for.visit_from} to "
            f"{chosen_for.visit_to}; schedule within those dates")
    if (c.ends_on - c.starts_on).days + 1 > MAX_VISIT_DAYS:
        raise CommandRefused(state, f"cannot schedule a visit longer than {MAX_VISIT_DAYS} days")
    return [ev.VisitScheduled(mode=c.mode, starts_on=c.starts_on, ends_on=c.ends_on)]


@_rule(cmd.RecordVisit)
def _visit(state: CaseState, c: cmd.RecordVisit, now: datetime) -> list[ev.Event]:
    _need_stage(state, "record the visit", Stage.VISIT_SCHEDULED, hint="schedule it first")
    _need_dates(state, "record the visit", c.started_on, c.ended_on,
                not_before=_requested(state), not_after=_today(now))
    if state.business_dates:
        _held_as_scheduled(state, c)
    if (c.ended_on - c.started_on).days + 1 > MAX_VISIT_DAYS:
        raise CommandRefused(state, f"cannot record a visit longer than {MAX_VISIT_DAYS} days")
    mode = c.mode or state.visit_mode
    assert mode is not None
    return [ev.VisitHeld(mode=mode, started_on=c.started_on, ended_on=c.ended_on)]


def _need_https(state: CaseState, url: str) -> None:
    """A publication's public address is https (cases opened since business dates; older
    cases keep the rule they were opened under, so their histories replay as they were)."""
    if state.business_dates and not url.startswith("https://"):
        raise CommandRefused(state, f"the address {url!r} must start with https://: the "
                                    "public register links to it")


def _held_as_scheduled(state: CaseState, c: cmd.RecordVisit) -> None:
    """A visit is not held before it was scheduled to start, nor outside the dates its team
    was selected as accredited and available for (an engine-selected team)."""
    assert state.visit_starts_on is not None
    _need_dates(state, "record the visit", c.started_on, c.ended_on,
                not_before=(state.visit_starts_on, "the visit was scheduled to start"),
                not_after=None, hint="schedule it again with the dates it was held, first")
    chosen_for = state.selection
    if chosen_for is not None and not (
            chosen_for.visit_from <= c.started_on and c.ended_on <= chosen_for.visit_to):
        raise CommandRefused(
            state, f"cannot record the visit from {c.started_on} to {c.ended_on}: the peer "
            f"team was selected as accredited and available from {chosen_for.visit_from} to "
            f"{chosen_for.visit_to}; a visit on other dates needs a team selected for them")


@_rule(cmd.GiveFeedback)
def _feedback(state: CaseState, c: cmd.GiveFeedback, now: datetime) -> list[ev.Event]:
    _need_stage(state, "record feedback", Stage.VISITED, hint="record the visit first")
    if state.feedback_given_on is not None:
        raise CommandRefused(state, f"feedback was already given on {state.feedback_given_on}")
    assert state.visit_held_from is not None
    _need_dates(state, "record feedback", c.given_on, c.given_on,
                not_before=(state.visit_held_from, "the visit started"), not_after=_today(now))
    return [ev.FeedbackGiven(given_on=c.given_on, summary=c.summary)]


@_rule(cmd.DraftReport)
def _draft(state: CaseState, c: cmd.DraftReport, now: datetime) -> list[ev.Event]:
    _need_stage(state, "send the draft report", Stage.VISITED, hint="record the visit first")
    if state.feedback_given_on is None:
        raise CommandRefused(state, "cannot send the draft report: record the feedback first")
    _need_dates(state, "send the draft report", c.sent_on, c.sent_on,
                not_before=(_visit_end(state), "the visit ended"), not_after=_today(now))
    return [ev.ReportDrafted(report_version=1, document_sha256=c.document_sha256,
                             sent_on=c.sent_on)]


@_rule(cmd.SubmitFactualAccuracyComments)
def _comments(state: CaseState, c: cmd.SubmitFactualAccuracyComments,
              now: datetime) -> list[ev.Event]:
    _need_stage(state, "submit factual-accuracy comments", Stage.REPORT_DRAFTED,
                hint="comments are taken on the draft only")
    return [ev.FactualAccuracyCommentsReceived(comments=c.comments)]


@_rule(cmd.FinaliseReport)
def _finalise(state: CaseState, c: cmd.FinaliseReport, now: datetime) -> list[ev.Event]:
    final = state.final_report
    if final is not None:
        raise CommandRefused(
            state, f"cannot make final: report version {final.report_version} is already final "
            "and cannot be changed; issue a correction with a reason")
    _need_stage(state, "make the report final", Stage.REPORT_DRAFTED, hint="draft it first")
    draft = state.draft_report
    assert draft is not None
    check = "comments_considered" if state.factual_accuracy_comments else "no_comments"
    final_on = c.final_on or now.date()
    assert state.draft_sent_on is not None
    _need_dates(state, "make the report final", final_on, final_on,
                not_before=(state.draft_sent_on, "the draft was sent"), not_after=_today(now))
    return [ev.ReportMadeFinal(report_version=draft.report_version,
                               document_sha256=c.document_sha256,
                               factual_accuracy_check=check,
                               made_final_on=final_on if state.business_dates else None)]


@_rule(cmd.CorrectReport)
def _correct(state: CaseState, c: cmd.CorrectReport, now: datetime) -> list[ev.Event]:
    final = state.final_report
    if final is None:
        raise CommandRefused(
            state, "cannot correct: the report is not final yet; revise the draft instead")
    if c.document_sha256 == final.document_sha256:
        raise CommandRefused(
            state, f"cannot correct: the document is identical to version {final.report_version}")
    newest = max(r.report_version for r in state.reports)
    return [ev.ReportCorrected(report_version=newest + 1, corrects_version=final.report_version,
                               document_sha256=c.document_sha256, reason=c.reason)]


@_rule(cmd.PublishReport)
def _publish(state: CaseState, c: cmd.PublishReport, now: datetime) -> list[ev.Event]:
    if state.stage == Stage.REPORT_DRAFTED:
        raise CommandRefused(state, "cannot publish: the report is still a draft; make it final")
    _need_stage(state, "publish the report", Stage.REPORT_FINAL)
    _need_https(state, c.url)
    assert state.draft_sent_on is not None
    limits = [(_visit_end(state), "the visit ended"), (state.draft_sent_on, "the draft was sent")]
    if state.business_dates and state.report_final_on is not None:
        limits.append((state.report_final_on, "the report was made final"))
    _need_dates(state, "record the report's publication", c.published_on, c.published_on,
                not_before=max(limits, key=lambda limit: limit[0]), not_after=_today(now))
    final = state.final_report
    assert final is not None
    return [ev.ReportPublished(report_version=final.report_version, published_on=c.published_on,
                               url=c.url), *_resolving(state, DeadlineName.REPORT_PUBLICATION)]


@_rule(cmd.PublishActionPlan)
def _action_plan(state: CaseState, c: cmd.PublishActionPlan, now: datetime) -> list[ev.Event]:
    _need_stage(state, "record the action plan", Stage.REPORT_PUBLISHED,
                hint="the report is published first or with it")
    _need_https(state, c.url)
    assert state.report_published_on is not None
    _need_dates(state, "record the action plan", c.published_on, c.published_on,
                not_before=(state.report_published_on, "the report was published"),
                not_after=_today(now))
    return [ev.ActionPlanPublished(published_on=c.published_on, url=c.url),
            *_resolving(state, DeadlineName.ACTION_PLAN_PUBLICATION)]


@_rule(cmd.HoldProgressReview)
def _review(state: CaseState, c: cmd.HoldProgressReview, now: datetime) -> list[ev.Event]:
    _need_stage(state, "record the progress review", Stage.ACTION_PLAN_PUBLISHED,
                hint="the action plan comes first")
    _need_dates(state, "record the progress review", c.started_on, c.ended_on,
                not_before=(_visit_end(state), "the visit ended"), not_after=_today(now))
    return [ev.ProgressReviewHeld(mode=c.mode, started_on=c.started_on, ended_on=c.ended_on),
            *_resolving(state, DeadlineName.PROGRESS_REVIEW)]


@_rule(cmd.PublishProgressReview)
def _review_published(state: CaseState, c: cmd.PublishProgressReview,
                      now: datetime) -> list[ev.Event]:
    _need_stage(state, "record the progress review report", Stage.PROGRESS_REVIEW_HELD,
                hint="hold the progress review first")
    _need_https(state, c.url)
    assert state.progress_review_held_on is not None
    _need_dates(state, "record the progress review report", c.published_on, c.published_on,
                not_before=(state.progress_review_held_on, "the progress review ended"),
                not_after=_today(now))
    return [ev.ProgressReviewPublished(published_on=c.published_on, url=c.url),
            *_resolving(state, DeadlineName.PROGRESS_REVIEW_PUBLICATION)]


@_rule(cmd.CloseCase)
def _close(state: CaseState, c: cmd.CloseCase, now: datetime) -> list[ev.Event]:
    _need_stage(state, "close the case", Stage.PROGRESS_REVIEW_PUBLISHED,
                hint="a case closes once its progress review report is published")
    return [ev.CaseClosed(summary=c.summary)]


@_rule(cmd.WithdrawCase)
def _withdraw(state: CaseState, c: cmd.WithdrawCase, now: datetime) -> list[ev.Event]:
    return [ev.CaseWithdrawn(reason=c.reason)]


def _waiting(state: CaseState, request_id: str, doing: str) -> ev.ApprovalRequested:
    waiting = state.awaiting(request_id)
    if waiting is None:
        listed = ", ".join(f"{a.request_id} ({a.action.replace('_', ' ')})"
                           for a in state.awaiting_approval) or "none"
        raise CommandRefused(state, f"cannot {doing}: no request {request_id} waits for "
                                    f"approval (waiting: {listed})")
    return ev.ApprovalRequested(request_id=waiting.request_id, action=waiting.action,
                                command=waiting.command)


@_rule(cmd.ApproveRequest)
def _approve(state: CaseState, c: cmd.ApproveRequest, now: datetime) -> list[ev.Event]:
    waiting = _waiting(state, c.request_id, "approve")
    awaiting = state.awaiting(c.request_id)
    assert awaiting is not None
    if parse_actor(awaiting.requested_by).person == parse_actor(c.actor).person:
        raise CommandRefused(
            state, f"cannot approve {c.request_id}: it is your own request; the four-eyes rule "
            "needs another case officer or an LGA principal adviser")
    try:
        asked = _COMMAND.validate_python({**waiting.command, "actor": awaiting.requested_by})
    except ValidationError:  # pragma: no cover - it was a valid command when requested
        raise CommandRefused(state, f"cannot approve {c.request_id}: the request no longer "
                                    "reads as a command; decline it") from None
    effect = _RULES[type(asked)](state, asked, now)
    return [ev.RequestApproved(request_id=c.request_id, action=waiting.action), *effect]


@_rule(cmd.DeclineRequest)
def _decline(state: CaseState, c: cmd.DeclineRequest, now: datetime) -> list[ev.Event]:
    waiting = _waiting(state, c.request_id, "decline")
    return [ev.RequestDeclined(request_id=c.request_id, action=waiting.action, reason=c.reason)]


def _every_command_has_a_rule() -> None:
    missing = {c for c in cmd.Command.__subclasses__() if c not in _RULES}
    if missing:
        raise RuntimeError(f"no rule for {sorted(c.__name__ for c in missing)}")


_every_command_has_a_rule()
