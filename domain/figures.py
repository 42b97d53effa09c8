"""The programme's annual figures (BRIEF §2), computed from events alone, one case at a time.

Pure: no I/O. Each case's history (its `Recorded` events in version order, as read from the
store and upcast) folds into one `CaseFacts`: the few facts of that case the figures need.
`CaseFacts.apply` takes one event at a time, so a read model can keep one row per case and
update it as events arrive, and `figures_from_facts` computes the figures of any period from
those rows; `annual_figures` does both from whole histories. Either way an auditor holding an
export of the events gets the same numbers, and every figure names the cases behind it
(`AnnualFigures.case_ids`).

The period runs from `start` to `end`, both days included; `financial_year(2019)` is the
LGA's "2019/20", 1 April 2019 to 31 March 2020. Business dates the events carry (`ended_on`,
`published_on`) place a fact in the period; only escalations, which carry no date of their
own, are placed by when they were recorded (the UTC date of `occurred_at`). A month is taken
as the engine's deadlines take it: 3 months = 91 days, 5 months = 152 days.

The definitions, one per figure (docs/figures.md sets them beside the LGA's own words):

- **Peer challenges delivered** (`delivered`): cases whose visit ended in the period, i.e.
  whose `VisitHeld.ended_on` falls in it (the LGA counts a challenge in the year its visit
  ended). A case withdrawn after its visit still counts; a case without a `VisitHeld` never
  does. (The rules allow one visit per case; should a history hold two, the last one stands.)
- **Of which corporate** (`corporate_delivered`): those whose `CaseRequested.kind` is
  `corporate_peer_challenge`.
- **Of which with a hand-picked team** (`hand_picked_teams`): delivered cases whose team at
  the visit was proposed by a case officer (`PeerTeamProposed.selected_by` = `officer`, which
  every version 1 proposal reads as) rather than selected by the engine's published rules.
- **Councils having one for the first time** (`first_time_councils`): distinct councils
  whose first corporate peer challenge ever, i.e. the earliest `VisitHeld.ended_on` of a
  corporate case of that council among all the cases given (imported past challenges
  included), falls in the period. Its cases are the one(s) holding that first visit. Only the
  events count: a challenge neither recorded nor imported is unknown here.
- **Distinct peers** (`officer_peers`, `councillor_peers`): distinct `peer_id`s on the team at
  the visit (the last `PeerTeamConfirmed` before the `VisitHeld`) of the cases delivered in
  the period, among seats that have a `home_council` (serving officers and councillors of
  councils). Officers are the roles `lead_officer` and `officer`; councillors `lead_member`
  and `member`. A peer who served in both kinds of role counts once in each. Peers proposed
  but not confirmed (after the council objected to one, say) do not count.
- **LGA staff** (`lga_staff`): distinct `peer_id`s on those teams in the role
  `challenge_manager`, or with no `home_council`: the LGA's own people, who are not peers.
- **Reports published** (`reports_published`): cases whose first `ReportPublished.published_on`
  falls in the period. **Within 3 months** (`reports_published_within_3_months`): of those,
  the ones with `published_on − VisitHeld.ended_on` ≤ 91 days. **Median days from visit to
  publication** (`median_days_visit_to_publication`): the median of that difference over the
  reports published in the period whose case has a visit; None when there are none. The days
  themselves are in `days_visit_to_publication`, sorted.
- **Action plans** (`action_plans_published`): cases whose first
  `ActionPlanPublished.published_on` falls in the period. **On time** (`action_plans_on_time`):
  of those, the ones with `published_on − VisitHeld.ended_on` ≤ 152 days, business dates both.
  (Until this definition "on time" was the engine's verdict: no `DeadlineMissed` recorded for
  the plan. Imported past challenges carry no engine verdict, and the deadline runs from the
  visit's last day, not from when the visit was recorded.) A plan of a case with no visit
  cannot be told on time and is not counted so.
- **Escalations raised** (`escalations_raised`): `EscalationRaised` events of level 1 recorded
  in the period (a lapse opening the ladder; climbing to levels 2 and 3 is the same
  escalation). **Resolved** (`escalations_resolved`): `EscalationResolved` events recorded in
  the period. An escalation ended by withdrawing the case is not resolved.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain import events as ev
from domain.read_models import ACTION_PLAN_DAYS, REPORT_DAYS
from domain.recorded import Recorded
from domain.state import STAGE_AFTER_EVENT, CaseState
from domain.vocabulary import CaseKind, Stage

OFFICER_ROLES = frozenset({"lead_officer", "officer"})
COUNCILLOR_ROLES = frozenset({"lead_member", "member"})
LGA_STAFF_ROLES = frozenset({"challenge_manager"})
REPORT_WITHIN_DAYS = REPORT_DAYS
"""The LGA's "within three months of the CPC", as the engine's deadlines count it."""
ACTION_PLAN_WITHIN_DAYS = ACTION_PLAN_DAYS
"""The LGA's "no later than five months of the CPC", as the engine's deadlines count it."""

SeatCount = Literal["officer_peers", "councillor_peers", "lga_staff"]
PickedBy = Literal["engine", "officer"]


class Seat(BaseModel):
    """One seat of a team as the figures see it: no name, so a read model of facts holds no
    more personal data than the figures need (and reads back whatever a stored event held)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peer_id: str
    role: ev.PeerRole
    home_council: str | None = None

    @classmethod
    def of(cls, place: ev.PeerPlace) -> Seat:
        """The seat of a place on a team (already validated as the event was: not again)."""
        return cls.model_construct(peer_id=place.peer_id, role=place.role,
                                   home_council=place.home_council)

    @property
    def counted_as(self) -> SeatCount:
        """Peers are serving officers and councillors of councils; the rest are LGA staff."""
        return seat_count(self.role, self.home_council)


def seat_count(role: str, home_council: str | None) -> SeatCount:
    """What a seat counts as (`Seat.counted_as`), from its role and home council alone: also
    for a seat read from a stored `CaseFacts` without building a `Seat`."""
    if role in LGA_STAFF_ROLES or home_council is None:
        return "lga_staff"
    return "officer_peers" if role in OFFICER_ROLES else "councillor_peers"


def _utc_day(moment: datetime) -> date:
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).date()


class CaseFacts(BaseModel):
    """Everything about one case that the figures need, kept up to date event by event.

    Frozen and JSON-round-trippable, so a read model can store it as one row per case:
    `CaseFacts.model_validate(f.model_dump(mode="json")) == f`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    council: str
    kind: CaseKind
    imported: bool = False
    """A past challenge brought in from a file rather than run by the engine."""
    visit_ended_on: date | None = None
    team: tuple[Seat, ...] = ()
    """The team confirmed last (`PeerTeamConfirmed`)."""
    team_at_visit: tuple[Seat, ...] = ()
    """The confirmed team when the visit was recorded: the one the figures count."""
    proposed_by: PickedBy | None = None
    """Who picked the team last proposed (`PeerTeamProposed.selected_by`)."""
    team_picked_by: PickedBy | None = None
    """Who picked the team last confirmed."""
    picked_by_at_visit: PickedBy | None = None
    report_published_on: date | None = None
    """The first `ReportPublished.published_on` (a later one re-publishes a correction)."""
    action_plan_published_on: date | None = None
    """The first `ActionPlanPublished.published_on`."""
    escalations_raised_on: tuple[date, ...] = ()
    """The UTC day each level-1 `EscalationRaised` was recorded."""
    escalations_resolved_on: tuple[date, ...] = ()
    """The UTC day each `EscalationResolved` was recorded."""
    stage_changes: tuple[tuple[date, Stage], ...] = ()
    """(UTC day recorded, stage after) for each event that moved the case to another stage
    (`domain.state.STAGE_AFTER_EVENT`), in version order: the stage on any day, unfolded."""

    @property
    def corporate(self) -> bool:
        return self.kind == CaseKind.CORPORATE_PEER_CHALLENGE

    @property
    def stage(self) -> Stage | None:
        """The stage the case stands at after the events applied so far."""
        return self.stage_changes[-1][1] if self.stage_changes else None

    def stage_on(self, day: date) -> Stage | None:
        """The stage at the end of `day` (UTC), as `domain.timeline.as_of` would fold it from
        the events recorded up to then; None before the case was requested."""
        stage = None
        for changed_on, changed_to in self.stage_changes:
            if changed_on > day:
                break
            stage = changed_to
        return stage

    @classmethod
    def opening(cls, recorded: Recorded) -> CaseFacts | None:
        """The facts after a case's first event; None when that is not `CaseRequested` (the
        checkpoint stream, say), so the history is not a case."""
        e = recorded.event
        if not isinstance(e, ev.CaseRequested):
            return None
        return cls(case_id=recorded.case_id, council=e.council, kind=e.kind,
                   imported=getattr(e, "imported", None) is not None,
                   stage_changes=((_utc_day(recorded.occurred_at), Stage.REQUESTED),))

    def apply(self, recorded: Recorded) -> CaseFacts:
        """The facts after one more event of this case; `self` itself when the event changes
        none of them (most events), so folding a large store copies little."""
        if recorded.case_id != self.case_id:
            raise ValueError(f"event of case {recorded.case_id} applied to the facts of case "
                             f"{self.case_id}")
        e = recorded.event
        change = _CHANGES.get(type(e))
        changes = change(self, e, recorded) if change is not None else None
        stage = STAGE_AFTER_EVENT.get(e.type_name())
        if stage is not None and stage != self.stage:
            moved = (*self.stage_changes, (_utc_day(recorded.occurred_at), stage))
            changes = {**changes, "stage_changes": moved} if changes else {"stage_changes": moved}
        return self.model_copy(update=changes) if changes else self


_Change = Callable[[CaseFacts, Any, Recorded], dict[str, Any] | None]


def _proposed(f: CaseFacts, e: ev.PeerTeamProposed, r: Recorded) -> dict[str, Any] | None:
    return None if f.proposed_by == e.selected_by else {"proposed_by": e.selected_by}


def _confirmed(f: CaseFacts, e: ev.PeerTeamConfirmed, r: Recorded) -> dict[str, Any] | None:
    return {"team": tuple(Seat.of(p) for p in e.team), "team_picked_by": f.proposed_by}


def _visit_held(f: CaseFacts, e: ev.VisitHeld, r: Recorded) -> dict[str, Any] | None:
    return {"visit_ended_on": e.ended_on, "team_at_visit": f.team,
            "picked_by_at_visit": f.team_picked_by}


def _report(f: CaseFacts, e: ev.ReportPublished, r: Recorded) -> dict[str, Any] | None:
    return None if f.report_published_on is not None else {"report_published_on": e.published_on}


def _plan(f: CaseFacts, e: ev.ActionPlanPublished, r: Recorded) -> dict[str, Any] | None:
    if f.action_plan_published_on is not None:
        return None
    return {"action_plan_published_on": e.published_on}


def _raised(f: CaseFacts, e: ev.EscalationRaised, r: Recorded) -> dict[str, Any] | None:
    if e.level != 1:
        return None
    return {"escalations_raised_on": (*f.escalations_raised_on, _utc_day(r.occurred_at))}


def _resolved(f: CaseFacts, e: ev.EscalationResolved, r: Recorded) -> dict[str, Any] | None:
    return {"escalations_resolved_on": (*f.escalations_resolved_on, _utc_day(r.occurred_at))}


_CHANGES: dict[type[ev.Event], _Change] = {
    ev.PeerTeamProposed: _proposed, ev.PeerTeamConfirmed: _confirmed,
    ev.VisitHeld: _visit_held, ev.ReportPublished: _report, ev.ActionPlanPublished: _plan,
    ev.EscalationRaised: _raised, ev.EscalationResolved: _resolved,
}
"""The only event types whose facts matter beyond the stage; every other leaves them alone."""


def facts_of(history: Iterable[Recorded]) -> CaseFacts | None:
    """The facts of a case after its whole history (events in version order); None for a
    history that is not a case (empty, or not opened by `CaseRequested`)."""
    events = iter(history)
    first = next(events, None)
    facts = CaseFacts.opening(first) if first is not None else None
    if facts is None:
        return None
    for recorded in events:
        facts = facts.apply(recorded)
    return facts


def _all_facts(histories: Iterable[Sequence[Recorded]]) -> list[CaseFacts]:
    return [f for f in map(facts_of, histories) if f is not None]


class AnnualFigures(BaseModel):
    """The figures of BRIEF §2 for one period; see the module's docstring for each definition."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    cases: int
    """Cases read (every case given, whatever its dates)."""
    delivered: int
    corporate_delivered: int
    first_time_councils: int
    hand_picked_teams: int
    officer_peers: int
    councillor_peers: int
    lga_staff: int
    reports_published: int
    reports_published_within_3_months: int
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
    """The cases counted in `delivered`, sorted (also `case_ids["delivered"]`)."""
    case_ids: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """For each figure of `FIGURE_LABELS`, the sorted ids of the cases behind it: the trail
    from a number to the events that made it."""

    def rows(self) -> list[tuple[str, str, int | float | None]]:
        """(key, label, value) of each headline figure, in reporting order: for a table or CSV."""
        return [(key, label, getattr(self, key)) for key, label in FIGURE_LABELS]

    def headline(self) -> dict[str, Any]:
        """The period and the headline figures as a JSON object (no lists)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                **{key: value for key, _, value in self.rows()}}

    def traced(self) -> dict[str, Any]:
        """`headline()` plus, under "case_ids", the cases behind each figure: JSON-ready."""
        return {**self.headline(),
                "case_ids": {key: list(self.case_ids.get(key, ())) for key, _ in FIGURE_LABELS}}


FIGURE_LABELS: tuple[tuple[str, str], ...] = (
    ("delivered", "peer challenges delivered (visits held)"),
    ("corporate_delivered", "of which corporate peer challenges"),
    ("hand_picked_teams", "of which with a hand-picked peer team (not the engine's rules)"),
    ("first_time_councils", "councils having a corporate peer challenge for the first time"),
    ("officer_peers", "distinct officer peers"),
    ("councillor_peers", "distinct councillor peers"),
    ("lga_staff", "LGA staff on the teams (not peers)"),
    ("reports_published", "reports published"),
    ("reports_published_within_3_months", "of which within 3 months of the visit"),
    ("median_days_visit_to_publication", "median days from visit to publication"),
    ("action_plans_published", "action plans published"),
    ("action_plans_on_time", "action plans published on time (within 5 months of the visit)"),
    ("escalations_raised", "escalations raised"),
    ("escalations_resolved", "escalations resolved"),
)


def figures_from_facts(facts: Iterable[CaseFacts], start: date, end: date, *,
                       first_corporate: Mapping[str, tuple[date, list[str]]] | None = None,
                       case_count: int | None = None) -> AnnualFigures:
    """The BRIEF §2 figures for `start`..`end` (both included) from every case's facts.

    Give every case, not only those of the period: "first time" looks back through all of
    them (imported past challenges included). Or give only the cases the period can count
    (a visit, a publication or an escalation in it), with `first_corporate` (each council's
    first corporate visit and the cases holding it, over every case) and `case_count` (how
    many cases there are): the same figures, from a fraction of the facts.
    """
    tally = FiguresTally(start, end, first_corporate)
    for case in facts:
        tally.add(case)
    return tally.figures(case_count)


class FiguresTally:
    """The figures of one period, counted one case's facts at a time: nothing but the ids
    behind each figure is kept, so a million events' facts can be streamed through it."""

    def __init__(self, start: date, end: date,
                 first_corporate: Mapping[str, tuple[date, list[str]]] | None = None) -> None:
        if end < start:
            raise ValueError(f"the period ends ({end}) before it starts ({start})")
        self.start, self.end = start, end
        self.first_corporate = first_corporate
        self.firsts: dict[str, tuple[date, list[str]]] = {}
        """Each council's first corporate visit among the cases added (without
        `first_corporate`)."""
        self.cases = 0
        self.ids: dict[str, list[str]] = {key: [] for key in (
            "delivered", "corporate_delivered", "hand_picked_teams", "officer_peers",
            "councillor_peers", "lga_staff", "reports_published",
            "reports_published_within_3_months", "action_plans_published",
            "action_plans_on_time", "escalations_raised", "escalations_resolved")}
        self.seated: dict[SeatCount, set[str]] = {"officer_peers": set(),
                                                  "councillor_peers": set(),
                                                  "lga_staff": set()}
        self.delays: dict[str, int] = {}
        self.raised = 0
        self.resolved = 0

    def add(self, c: CaseFacts) -> None:
        """Count one case's facts."""
        self._count(c.case_id, c.council, c.corporate, c.visit_ended_on, c.picked_by_at_visit,
                    ((seat.peer_id, seat.counted_as) for seat in c.team_at_visit),
                    c.report_published_on, c.action_plan_published_on,
                    c.escalations_raised_on, c.escalations_resolved_on)

    def add_stored(self, stored: Mapping[str, Any]) -> None:
        """Count one case from its facts as a read model stores them (the parsed JSON of
        `CaseFacts.model_dump(mode="json")`: ISO dates, seats as objects), the same as `add`
        of the model would, without building it: validating tens of thousands of stored
        rows into models took longer than all the counting."""
        day, get = _stored_day, stored.get
        self._count(stored["case_id"], stored["council"], stored["kind"] == _CORPORATE,
                    day(get("visit_ended_on")), get("picked_by_at_visit"),
                    ((seat["peer_id"], seat_count(seat["role"], seat.get("home_council")))
                     for seat in get("team_at_visit") or ()),
                    day(get("report_published_on")), day(get("action_plan_published_on")),
                    [date.fromisoformat(text) for text in get("escalations_raised_on") or ()],
                    [date.fromisoformat(text) for text in get("escalations_resolved_on") or ()])

    def _count(self, case_id: str, council: str, corporate: bool, visit: date | None,
               picked_by: str | None, seats: Iterable[tuple[str, SeatCount]],
               report: date | None, plan: date | None, raised_on: Sequence[date],
               resolved_on: Sequence[date]) -> None:
        """The one place a case is counted, whichever form its facts came in."""
        self.cases += 1
        ids, start, end = self.ids, self.start, self.end
        if self.first_corporate is None and corporate and visit is not None:
            seen = self.firsts.get(council)
            if seen is None or visit < seen[0]:
                self.firsts[council] = (visit, [case_id])
            elif visit == seen[0]:
                seen[1].append(case_id)
        if visit is not None and start <= visit <= end:
            ids["delivered"].append(case_id)
            if corporate:
                ids["corporate_delivered"].append(case_id)
            if picked_by == "officer":
                ids["hand_picked_teams"].append(case_id)
            kinds: set[SeatCount] = set()
            seated = self.seated
            for peer_id, kind in seats:
                kinds.add(kind)
                seated[kind].add(peer_id)
            for kind in kinds:
                ids[kind].append(case_id)
        if report is not None and start <= report <= end:
            ids["reports_published"].append(case_id)
            if visit is not None:
                delay = (report - visit).days
                self.delays[case_id] = delay
                if delay <= REPORT_WITHIN_DAYS:
                    ids["reports_published_within_3_months"].append(case_id)
        if plan is not None and start <= plan <= end:
            ids["action_plans_published"].append(case_id)
            if visit is not None and (plan - visit).days <= ACTION_PLAN_WITHIN_DAYS:
                ids["action_plans_on_time"].append(case_id)
        if raised_on and (raised := sum(start <= day <= end for day in raised_on)):
            self.raised += raised
            ids["escalations_raised"].append(case_id)
        if resolved_on and (resolved := sum(start <= day <= end for day in resolved_on)):
            self.resolved += resolved
            ids["escalations_resolved"].append(case_id)

    def figures(self, case_count: int | None = None) -> AnnualFigures:
        firsts = self.firsts if self.first_corporate is None else self.first_corporate
        first_time = {council: found for council, (day, found) in firsts.items()
                      if self.start <= day <= self.end}
        days = sorted(self.delays.values())
        case_ids: dict[str, tuple[str, ...]] = {
            key: _sorted_once(found) for key, found in self.ids.items()}
        case_ids["first_time_councils"] = tuple(sorted(
            i for found in first_time.values() for i in found))
        case_ids["median_days_visit_to_publication"] = tuple(sorted(self.delays))
        count = {key: len(found) for key, found in case_ids.items()}
        return AnnualFigures(
            start=self.start, end=self.end,
            cases=self.cases if case_count is None else case_count,
            delivered=count["delivered"], corporate_delivered=count["corporate_delivered"],
            first_time_councils=len(first_time), hand_picked_teams=count["hand_picked_teams"],
            officer_peers=len(self.seated["officer_peers"]),
            councillor_peers=len(self.seated["councillor_peers"]),
            lga_staff=len(self.seated["lga_staff"]),
            reports_published=count["reports_published"],
            reports_published_within_3_months=count["reports_published_within_3_months"],
            median_days_visit_to_publication=float(statistics.median(days)) if days else None,
            action_plans_published=count["action_plans_published"],
            action_plans_on_time=count["action_plans_on_time"],
            escalations_raised=self.raised, escalations_resolved=self.resolved,
            days_visit_to_publication=tuple(days),
            first_time_council_codes=tuple(sorted(first_time)),
            delivered_case_ids=case_ids["delivered"], case_ids=case_ids)


_CORPORATE = CaseKind.CORPORATE_PEER_CHALLENGE.value


def _stored_day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _sorted_once(ids: list[str]) -> tuple[str, ...]:
    """Sorted, each id once: sorted first, so that ids that came in order (a read model's
    rows mostly do) sort in one pass, then repeats dropped keeping that order."""
    return tuple(dict.fromkeys(sorted(ids)))


def annual_figures(histories: Iterable[Sequence[Recorded]], start: date,
                   end: date) -> AnnualFigures:
    """The BRIEF §2 figures for `start`..`end` (both included) from every case's history.

    `figures_from_facts` over `facts_of` each history; histories that are not cases (the
    checkpoint stream) are skipped.
    """
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    return figures_from_facts(_all_facts(histories), start, end)


def financial_year(year: int) -> tuple[date, date]:
    """The LGA's programme year that starts in `year`: 2019 is 1 April 2019 to 31 March 2020."""
    return date(year, 4, 1), date(year + 1, 3, 31)


def financial_year_label(year: int) -> str:
    """How the LGA writes the financial year starting in `year`: 2019 is "2019/20"."""
    return f"{year}/{(year + 1) % 100:02d}"


def calendar_year(year: int) -> tuple[date, date]:
    """1 January to 31 December of `year`."""
    return date(year, 1, 1), date(year, 12, 31)


def _by_stage(stages: Iterable[Stage | None]) -> dict[str, int]:
    counted = Counter(s for s in stages if s is not None)
    return {stage.value: counted.get(stage, 0) for stage in Stage}


def cases_by_stage(states: Iterable[CaseState]) -> dict[str, int]:
    """How many cases stand at each stage: every stage in journey order (withdrawn last),
    zeros included, so a chart of it keeps its shape. States with no events are skipped."""
    return _by_stage(s.stage for s in states)


def cases_by_stage_on(facts: Iterable[CaseFacts], day: date) -> dict[str, int]:
    """`cases_by_stage` of the cases as they stood at the end of `day` (UTC), from their facts:
    what `cases_by_stage(as_of(h, end_of_day(day)) …)` gives, without folding histories.
    Cases requested after `day` are skipped."""
    return _by_stage(f.stage_on(day) for f in facts)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def last_corporate_visits_from_facts(facts: Iterable[CaseFacts]) -> dict[str, date]:
    """Each council's latest corporate peer challenge visit (`VisitHeld.ended_on`)."""
    last: dict[str, date] = {}
    for case in facts:
        if case.corporate and case.visit_ended_on is not None:
            seen = last.get(case.council)
            if seen is None or case.visit_ended_on > seen:
                last[case.council] = case.visit_ended_on
    return last


def last_corporate_visits(histories: Iterable[Sequence[Recorded]]) -> dict[str, date]:
    """`last_corporate_visits_from_facts` of whole histories."""
    return last_corporate_visits_from_facts(_all_facts(histories))


def councils_due_from_facts(councils: Iterable[str], facts: Iterable[CaseFacts], today: date,
                            years: int = 5) -> list[tuple[str, date | None]]:
    """Councils with no corporate peer challenge in the last `years` years, as of `today`.

    A council is due when its last corporate visit (`VisitHeld.ended_on`, from the events)
    ended on or before the same day `years` years ago (29 February counts as 28), or when it
    has none. A council with a corporate case requested but not yet visited is still due.
    Returns (GSS code, date of its last corporate visit or None) for each council of
    `councils` that is due, those never visited first, then the longest ago first; ties by code.
    """
    return councils_due_from_last_visits(councils, last_corporate_visits_from_facts(facts),
                                         today, years)


def councils_due_from_last_visits(councils: Iterable[str], last: Mapping[str, date],
                                  today: date, years: int = 5) -> list[tuple[str, date | None]]:
    """`councils_due_from_facts`, given each council's last corporate visit (as the council
    summaries hold it)."""
    cutoff = _years_before(today, years)
    due: dict[str, date | None] = {}
    for gss in councils:
        visited = last.get(gss)
        if visited is None or visited <= cutoff:
            due[gss] = visited
    return sorted(due.items(), key=lambda item: (item[1] is not None, item[1] or date.min,
                                                  item[0]))


def councils_due(councils: Iterable[str], histories: Iterable[Sequence[Recorded]], today: date,
                 years: int = 5) -> list[tuple[str, date | None]]:
    """`councils_due_from_facts` of whole histories."""
    return councils_due_from_facts(councils, _all_facts(histories), today, years)

