"""The programme's annual figures (BRIEF §2), computed from events alone.

Pure: give it every case's history (its `Recorded` events in version order, as read from the
store and upcast) and a period; it reads nothing else, so an auditor holding an export of the
events gets the same numbers. The period runs from `start` to `end`, both days included. Dates
the events carry (`ended_on`, `published_on`) place a fact in the period; only escalations,
which carry no date of their own, are placed by when they were recorded (`occurred_at`, its
UTC date).

The definitions, one per figure:

- **Peer challenges delivered** (`delivered`): cases whose visit was held in the period, i.e.
  whose `VisitHeld.ended_on` falls in it. A case withdrawn after its visit still counts; a
  case without a `VisitHeld` never does. (The rules allow one visit per case; should a history
  hold two, the last one stands, as in the fold.)
- **Of which corporate** (`corporate_delivered`): those whose `CaseRequested.kind` is
  `corporate_peer_challenge`.
- **Councils having one for the first time** (`first_time_councils`): distinct councils with
  a corporate peer challenge delivered in the period and no `VisitHeld` of a corporate peer
  challenge ending before the period's start, in any history given. Only the events count:
  a peer challenge held before the store existed is unknown here.
- **Of which with a hand-picked team** (`hand_picked_teams`): delivered cases whose team at
  the visit was proposed by a case officer (`PeerTeamProposed.selected_by` = `officer`, which
  every version 1 proposal reads as) rather than selected by the engine's published rules: the
  figure that shows how often the rules were bypassed.
- **Distinct peers** (`officer_peers`, `councillor_peers`): distinct `peer_id`s on the
  `PeerTeamConfirmed` team (the last one before the visit) of the cases delivered in the
  period. Officers are the roles `lead_officer`, `officer` and `challenge_manager`;
  councillors are `lead_member` and `member`. Counted separately: a peer who served in both
  kinds of role during the period counts once in each. Peers proposed but not confirmed
  (for instance after the council objected to one) do not count.
- **Reports published** (`reports_published`): cases whose report was published in the
  period, i.e. whose (first) `ReportPublished.published_on` falls in it. **Median days from
  visit to publication** (`median_days_visit_to_publication`): the median, over those cases,
  of `published_on − VisitHeld.ended_on` in days; None when there are none. The days
  themselves are in `days_visit_to_publication`, sorted.
- **Action plans on time** (`action_plans_on_time` of `action_plans_published`): cases whose
  `ActionPlanPublished.published_on` falls in the period, and of those the ones with no
  `DeadlineMissed` for `action_plan_publication` earlier in the case's history (by version).
  So "on time" is the engine's verdict, as recorded: the deadline counts from when the visit
  was recorded, in workflow time, and a plan recorded before the engine recorded the lapse is
  on time, whatever date it carries.
- **Escalations raised** (`escalations_raised`): `EscalationRaised` events of level 1 recorded
  in the period (a lapse opening the ladder; climbing it to levels 2 and 3 is the same
  escalation). **Resolved** (`escalations_resolved`): `EscalationResolved` events recorded in
  the period (compliance with the lapsed step). An escalation ended by withdrawing the case is
  not resolved.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.recorded import Recorded
from domain.state import CaseState
from domain.vocabulary import CaseKind, DeadlineName, Stage

OFFICER_ROLES = frozenset({"lead_officer", "officer", "challenge_manager"})
COUNCILLOR_ROLES = frozenset({"lead_member", "member"})


class AnnualFigures(BaseModel):
    """The figures of BRIEF §2 for one period; see the module's docstring for each definition."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    cases: int
    """Case histories read (every case in the store, whatever its dates)."""
    delivered: int
    corporate_delivered: int
    first_time_councils: int
    hand_picked_teams: int
    officer_peers: int
    councillor_peers: int
    reports_published: int
    median_days_visit_to_publication: float | None
    action_plans_published: int
    action_plans_on_time: int
    escalations_raised: int
    escalations_resolved: int
    days_visit_to_publication: tuple[int, ...] = ()
    """Days from visit to publication of each report published in the period, sorted."""
    first_time_council_codes: tuple[str, ...] = ()
    """The GSS codes counted in `first_time_councils`, sorted."""
    delivered_case_ids: tuple[str, ...] = ()
    """The cases counted in `delivered`, sorted: the trail from a figure to its events."""

    def rows(self) -> list[tuple[str, str, int | float | None]]:
        """(key, label, value) of each headline figure, in reporting order: for a table or CSV."""
        return [(key, label, getattr(self, key)) for key, label in FIGURE_LABELS]

    def headline(self) -> dict[str, Any]:
        """The period and the headline figures as a JSON object (no lists)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                **{key: value for key, _, value in self.rows()}}


FIGURE_LABELS: tuple[tuple[str, str], ...] = (
    ("delivered", "peer challenges delivered (visits held)"),
    ("corporate_delivered", "of which corporate peer challenges"),
    ("hand_picked_teams", "of which with a hand-picked peer team (not the engine's rules)"),
    ("first_time_councils", "councils having a corporate peer challenge for the first time"),
    ("officer_peers", "distinct officer peers"),
    ("councillor_peers", "distinct councillor peers"),
    ("reports_published", "reports published"),
    ("median_days_visit_to_publication", "median days from visit to publication"),
    ("action_plans_published", "action plans published"),
    ("action_plans_on_time", "action plans published on time"),
    ("escalations_raised", "escalations raised"),
    ("escalations_resolved", "escalations resolved"),
)


@dataclass
class _Case:
    """The facts of one history that the figures need, gathered in one pass."""

    case_id: str
    council: str
    kind: CaseKind
    visit_ended_on: date | None = None
    team: tuple[ev.PeerPlace, ...] = ()
    team_at_visit: tuple[ev.PeerPlace, ...] = ()
    proposed_by: str | None = None
    team_picked_by: str | None = None
    picked_by_at_visit: str | None = None
    report_published_on: date | None = None
    action_plan_published_on: date | None = None
    action_plan_late: bool = False
    raised_on: list[date] = field(default_factory=list)
    resolved_on: list[date] = field(default_factory=list)

    @property
    def corporate(self) -> bool:
        return self.kind == CaseKind.CORPORATE_PEER_CHALLENGE


def _utc_day(moment: datetime) -> date:
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).date()


def _facts(history: Sequence[Recorded]) -> _Case | None:
    """None for a history that is not a case (no CaseRequested first, e.g. checkpoints)."""
    if not history or not isinstance(history[0].event, ev.CaseRequested):
        return None
    first = history[0].event
    case = _Case(case_id=history[0].case_id, council=first.council, kind=first.kind)
    action_plan_missed = False
    for recorded in history[1:]:
        e = recorded.event
        if isinstance(e, ev.PeerTeamProposed):
            case.proposed_by = e.selected_by
        elif isinstance(e, ev.PeerTeamConfirmed):
            case.team, case.team_picked_by = tuple(e.team), case.proposed_by
        elif isinstance(e, ev.VisitHeld):
            case.visit_ended_on, case.team_at_visit = e.ended_on, case.team
            case.picked_by_at_visit = case.team_picked_by
        elif isinstance(e, ev.ReportPublished):
            if case.report_published_on is None:
                case.report_published_on = e.published_on
        elif isinstance(e, ev.ActionPlanPublished):
            if case.action_plan_published_on is None:
                case.action_plan_published_on = e.published_on
                case.action_plan_late = action_plan_missed
        elif isinstance(e, ev.DeadlineMissed):
            if e.deadline == DeadlineName.ACTION_PLAN_PUBLICATION:
                action_plan_missed = True
        elif isinstance(e, ev.EscalationRaised):
            if e.level == 1:
                case.raised_on.append(_utc_day(recorded.occurred_at))
        elif isinstance(e, ev.EscalationResolved):
            case.resolved_on.append(_utc_day(recorded.occurred_at))
    return case


def _cases(histories: Iterable[Sequence[Recorded]]) -> list[_Case]:
    return [c for c in map(_facts, histories) if c is not None]


def annual_figures(histories: Iterable[Sequence[Recorded]], start: date,
                   end: date) -> AnnualFigures:
    """The BRIEF §2 figures for `start`..`end` (both included) from every case's history.

    Give every case of the store, not only those of the period: "first time" looks back
    through all of them. Histories that are not cases (the checkpoint stream) are skipped.
    """
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")

    def within(day: date | None) -> bool:
        return day is not None and start <= day <= end

    cases = _cases(histories)
    delivered = [c for c in cases if within(c.visit_ended_on)]
    corporate = [c for c in delivered if c.corporate]
    earlier_corporate = {c.council for c in cases if c.corporate and c.visit_ended_on is not None
                         and c.visit_ended_on < start}
    first_time = sorted({c.council for c in corporate} - earlier_corporate)
    seats = [p for c in delivered for p in c.team_at_visit]
    officers = {p.peer_id for p in seats if p.role in OFFICER_ROLES}
    councillors = {p.peer_id for p in seats if p.role in COUNCILLOR_ROLES}
    published = [c for c in cases if within(c.report_published_on)]
    days = sorted((c.report_published_on - c.visit_ended_on).days for c in published
                  if c.report_published_on is not None and c.visit_ended_on is not None)
    plans = [c for c in cases if within(c.action_plan_published_on)]
    return AnnualFigures(
        start=start, end=end, cases=len(cases),
        delivered=len(delivered), corporate_delivered=len(corporate),
        first_time_councils=len(first_time),
        hand_picked_teams=sum(1 for c in delivered if c.picked_by_at_visit == "officer"),
        officer_peers=len(officers), councillor_peers=len(councillors),
        reports_published=len(published),
        median_days_visit_to_publication=float(statistics.median(days)) if days else None,
        action_plans_published=len(plans),
        action_plans_on_time=sum(1 for c in plans if not c.action_plan_late),
        escalations_raised=sum(1 for c in cases for d in c.raised_on if within(d)),
        escalations_resolved=sum(1 for c in cases for d in c.resolved_on if within(d)),
        days_visit_to_publication=tuple(days),
        first_time_council_codes=tuple(first_time),
        delivered_case_ids=tuple(sorted(c.case_id for c in delivered)),
    )


def cases_by_stage(states: Iterable[CaseState]) -> dict[str, int]:
    """How many cases stand at each stage: every stage in journey order (withdrawn last),
    zeros included, so a chart of it keeps its shape. States with no events are skipped."""
    counted = Counter(s.stage for s in states if s.stage is not None)
    return {stage.value: counted.get(stage, 0) for stage in Stage}


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def last_corporate_visits(histories: Iterable[Sequence[Recorded]]) -> dict[str, date]:
    """Each council's latest corporate peer challenge visit (`VisitHeld.ended_on`)."""
    last: dict[str, date] = {}
    for case in _cases(histories):
        if case.corporate and case.visit_ended_on is not None:
            seen = last.get(case.council)
            if seen is None or case.visit_ended_on > seen:
                last[case.council] = case.visit_ended_on
    return last


def councils_due(councils: Iterable[str], histories: Iterable[Sequence[Recorded]], today: date,
                 years: int = 5) -> list[tuple[str, date | None]]:
    """Councils with no corporate peer challenge in the last `years` years, as of `today`.

    A council is due when its last corporate visit (`VisitHeld.ended_on`, from the events)
    ended on or before the same day `years` years ago (29 February counts as 28), or when it
    has none. A council with a corporate case requested but not yet visited is still due.
    Returns (GSS code, date of its last corporate visit or None) for each council of
    `councils` that is due, those never visited first, then the longest ago first; ties by code.
    """
    cutoff = _years_before(today, years)
    last = last_corporate_visits(histories)
    due: dict[str, date | None] = {}
    for gss in councils:
        visited = last.get(gss)
        if visited is None or visited <= cutoff:
            due[gss] = visited
    return sorted(due.items(), key=lambda item: (item[1] is not None, item[1] or date.min,
                                                  item[0]))
