"""The invariants of a case's journey, checked on a folded state.

Why it exists: the rules (`rules.decide`) are written command by command, so nothing in them
says what a sound case looks like as a whole. `violations` does: the property tests run every
sequence of commands through the rules and ask it after each step, and an auditor can ask it
of any case folded from the store. It never raises; an empty list means the state is sound.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from itertools import pairwise

from domain.state import CaseState
from domain.vocabulary import CaseKind, DeadlineName, Stage

_TOP_LEVEL = 3

_STEP_DATES: tuple[tuple[str, Stage], ...] = (
    ("visit_starts_on", Stage.VISIT_SCHEDULED),
    ("visit_ends_on", Stage.VISIT_SCHEDULED),
    ("visit_held_from", Stage.VISITED),
    ("visit_held_to", Stage.VISITED),
    ("visit_recorded_at", Stage.VISITED),
    ("draft_sent_on", Stage.REPORT_DRAFTED),
    ("draft_sent_at", Stage.REPORT_DRAFTED),
    ("report_published_on", Stage.REPORT_PUBLISHED),
    ("action_plan_published_on", Stage.ACTION_PLAN_PUBLISHED),
    ("progress_review_held_on", Stage.PROGRESS_REVIEW_HELD),
    ("progress_review_published_on", Stage.PROGRESS_REVIEW_PUBLISHED),
)
"""A field the step of `stage` records: set at that stage and after, never before it."""

_DONE_BY: dict[DeadlineName, str] = {
    DeadlineName.REPORT_PUBLICATION: "report_published_on",
    DeadlineName.ACTION_PLAN_PUBLICATION: "action_plan_published_on",
    DeadlineName.PROGRESS_REVIEW: "progress_review_held_on",
    DeadlineName.PROGRESS_REVIEW_PUBLICATION: "progress_review_published_on",
}
"""The field whose step complies with a deadline that escalates."""


_RANK = {stage: stage.rank for stage in Stage}


def _on_journey_at_or_past(state: CaseState, stage: Stage) -> bool:
    """At `stage` or later on the journey (a withdrawn case is on no stage of it)."""
    return (state.stage is not None and state.stage != Stage.WITHDRAWN
            and _RANK[state.stage] >= _RANK[stage])


def _may_have_reached(state: CaseState, stage: Stage) -> bool:
    """At `stage` or later, or withdrawn (from a stage we cannot tell)."""
    return state.stage is not None and _RANK[state.stage] >= _RANK[stage]


def _not_before(found: list[str], later: date | None, later_name: str,
                earlier: date | None, earlier_name: str) -> None:
    if later is not None and earlier is not None and later < earlier:
        found.append(f"{later_name} {later} is before {earlier_name} {earlier}")


def violations(state: CaseState) -> list[str]:
    """Every way `state` breaks the journey's invariants; empty when it is sound."""
    found: list[str] = []
    _started(state, found)
    _steps(state, found)
    _team(state, found)
    _dates(state, found)
    _reports(state, found)
    _escalations(state, found)
    return found


def _started(state: CaseState, found: list[str]) -> None:
    if state.version < 0:
        found.append(f"version {state.version} is negative")
    if (state.version == 0) != (state.stage is None):
        found.append(f"version {state.version} with stage {state.stage}: version 0 is exactly "
                     "the case not yet requested")
    if (state.version == 0) != (state.last_event_at is None):
        found.append("last_event_at must be set exactly when an event has been folded")
    if state.stage is not None:
        for name in ("council", "kind", "reason", "requested_at"):
            if getattr(state, name) is None:
                found.append(f"a requested case has no {name}")
    if _on_journey_at_or_past(state, Stage.SCOPED):
        if not state.scope:
            found.append(f"stage {state.stage} but the case has no scope")
        if state.visit_mode is None:
            found.append(f"stage {state.stage} but the case has no visit mode")
    if (state.stage == Stage.WITHDRAWN) != (state.withdrawal_reason is not None):
        found.append(f"stage {state.stage} with withdrawal reason {state.withdrawal_reason!r}: "
                     "a case is withdrawn exactly when it has a reason")


def _steps(state: CaseState, found: list[str]) -> None:
    for name, stage in _STEP_DATES:
        value = getattr(state, name)
        if _on_journey_at_or_past(state, stage) and value is None:
            found.append(f"stage {state.stage} but {name} is not recorded")
        if value is not None and not _may_have_reached(state, stage):
            found.append(f"{name} is recorded but the case is only {state.stage}")
    if state.feedback_given_on is not None and not _may_have_reached(state, Stage.VISITED):
        found.append(f"feedback is recorded but the case is only {state.stage}")
    if _on_journey_at_or_past(state, Stage.REPORT_DRAFTED) and state.feedback_given_on is None:
        found.append(f"stage {state.stage} but no feedback was given")


def _team(state: CaseState, found: list[str]) -> None:
    if _on_journey_at_or_past(state, Stage.PEERS_SELECTED) and not state.team:
        found.append(f"stage {state.stage} but no peer team is confirmed")
    if state.team and not _may_have_reached(state, Stage.PEERS_SELECTED):
        found.append(f"a peer team is confirmed but the case is only {state.stage}")
    if state.proposed_team and state.stage not in (Stage.SCOPED, Stage.WITHDRAWN):
        found.append(f"a proposed peer team is pending at stage {state.stage}")
    if state.objections and not _may_have_reached(state, Stage.SCOPED):
        found.append(f"an objection is recorded but the case is only {state.stage}")
    objected = {o.peer_id for o in state.objections}
    for label, team in (("confirmed", state.team), ("proposed", state.proposed_team)):
        for peer_id, count in Counter(p.peer_id for p in team).items():
            if count > 1:
                found.append(f"peer {peer_id} sits {count} times on the {label} team")
        for place in team:
            if place.home_council is not None and place.home_council == state.council:
                found.append(f"peer {place.peer_id} on the {label} team is from the subject "
                             f"council {state.council}")
    for place in state.team:
        if place.peer_id in objected:
            found.append(f"peer {place.peer_id} is on the confirmed team though the council "
                         "objected to them")
    if state.team and state.kind == CaseKind.CORPORATE_PEER_CHALLENGE:
        roles = {p.role for p in state.team}
        for needed in ("lead_member", "lead_officer"):
            if needed not in roles:
                found.append(f"the corporate peer challenge team has no {needed} peer")


def _dates(state: CaseState, found: list[str]) -> None:
    _not_before(found, state.visit_ends_on, "the scheduled visit's end",
                state.visit_starts_on, "its start")
    _not_before(found, state.visit_held_to, "the visit's end", state.visit_held_from,
                "its start")
    if state.requested_at is not None:
        _not_before(found, state.visit_held_from, "the visit's start",
                    state.requested_at.date(), "the request")
    _not_before(found, state.feedback_given_on, "the feedback", state.visit_held_from,
                "the visit's start")
    _not_before(found, state.draft_sent_on, "the draft report", state.visit_held_to,
                "the visit's end")
    _not_before(found, state.report_published_on, "the report's publication",
                state.draft_sent_on, "the draft report")
    _not_before(found, state.report_published_on, "the report's publication",
                state.visit_held_to, "the visit's end")
    _not_before(found, state.action_plan_published_on, "the action plan",
                state.report_published_on, "the report's publication")
    _not_before(found, state.progress_review_held_on, "the progress review",
                state.visit_held_to, "the visit's end")
    _not_before(found, state.progress_review_published_on, "the progress review report",
                state.progress_review_held_on, "the progress review")
    if state.last_event_at is not None:
        for name in ("requested_at", "visit_recorded_at", "draft_sent_at"):
            value = getattr(state, name)
            if value is not None and value > state.last_event_at:
                found.append(f"{name} {value} is after the last event {state.last_event_at}")


def _reports(state: CaseState, found: list[str]) -> None:
    versions = [r.report_version for r in state.reports]
    for version, count in Counter(versions).items():
        if count > 1:
            found.append(f"report version {version} appears {count} times")
    if sorted(versions) != list(range(1, len(versions) + 1)):
        found.append(f"report versions {versions} are not 1, 2, 3 … without gaps")
    finals = [r.report_version for r in state.reports if r.status == "final"]
    if any(later <= earlier for earlier, later in pairwise(finals)):
        found.append(f"final report versions {finals} do not only increase")
    drafts = [r for r in state.reports if r.status == "draft"]
    if len(drafts) > 1:
        found.append(f"{len(drafts)} draft reports are open at once")
    if drafts and finals:
        found.append("a draft report remains beside a final one")
    for report in state.reports:
        if report.correction_reason is not None and (
                report.status != "final" or report.report_version < 2):
            found.append(f"report version {report.report_version} is a correction but not a "
                         "later final version")
    if state.reports and not _may_have_reached(state, Stage.REPORT_DRAFTED):
        found.append(f"a report is recorded but the case is only {state.stage}")
    if _on_journey_at_or_past(state, Stage.REPORT_DRAFTED) and not state.reports:
        found.append(f"stage {state.stage} but there is no report")
    if state.stage == Stage.REPORT_DRAFTED and finals:
        found.append("stage report drafted but a final report exists")
    if _on_journey_at_or_past(state, Stage.REPORT_FINAL) and state.final_report is None:
        found.append(f"stage {state.stage} but there is no final report")
    if state.factual_accuracy_comments and not _may_have_reached(state, Stage.REPORT_DRAFTED):
        found.append(f"factual-accuracy comments are recorded but the case is only {state.stage}")


def _escalations(state: CaseState, found: list[str]) -> None:
    for deadline, count in Counter(state.missed_deadlines).items():
        if count > 1:
            found.append(f"deadline {deadline} lapsed {count} times")
    for deadline, count in Counter(e.deadline for e in state.escalations).items():
        if count > 1:
            found.append(f"{count} open escalations for deadline {deadline}")
    for escalation in state.escalations:
        if not 1 <= escalation.level <= _TOP_LEVEL:
            found.append(f"escalation of {escalation.deadline} at level {escalation.level}, "
                         f"outside 1..{_TOP_LEVEL}")
        if escalation.deadline not in state.missed_deadlines:
            found.append(f"escalation of {escalation.deadline} without its lapse recorded")
        done_by = _DONE_BY.get(escalation.deadline)
        if done_by is None:
            found.append(f"deadline {escalation.deadline} does not escalate")
        elif getattr(state, done_by) is not None:
            found.append(f"escalation of {escalation.deadline} still open after compliance")
        if state.last_event_at is not None and escalation.raised_at > state.last_event_at:
            found.append(f"escalation of {escalation.deadline} raised after the last event")
    if state.escalations and not state.is_open:
        found.append(f"the case is {state.stage} with {len(state.escalations)} open "
                     "escalation(s)")
    if not 0 <= state.escalations_resolved <= state.escalations_raised:
        found.append(f"escalations resolved ({state.escalations_resolved}) exceed those "
                     f"raised ({state.escalations_raised})")
    unresolved = state.escalations_raised - state.escalations_resolved
    if len(state.escalations) > unresolved:
        found.append(f"{len(state.escalations)} escalations open but only {unresolved} raised "
                     "and not resolved")
