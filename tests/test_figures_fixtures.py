"""The annual figures (domain.figures) on small hand-built cases, one definition at a time.

Each case is a few `Recorded` events built directly (no rules, no workflow), so every edge a
definition has (the last day of a financial year, 91 against 92 days, 152 against 153, LGA
staff on a team, a council's earlier visit in another case) is pinned exactly, with the cases
behind each figure, both from the facts and from the facts as a read model stores them. Then
two properties of `CaseFacts`: folding event by event from any point gives the facts of the
whole history, and the facts survive a JSON round trip (what a read model storing one row per
case relies on).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import events as ev
from domain.figures import (
    FIGURE_LABELS,
    AnnualFigures,
    CaseFacts,
    FiguresTally,
    annual_figures,
    calendar_year,
    cases_by_stage_on,
    councils_due_from_facts,
    facts_of,
    figures_from_facts,
    financial_year,
    financial_year_label,
)
from domain.recorded import Recorded
from domain.state import fold
from domain.timeline import as_of, end_of_day
from domain.vocabulary import CaseKind, DeadlineName, Stage, VisitMode

CPC, FINANCE = CaseKind.CORPORATE_PEER_CHALLENGE, CaseKind.FINANCE
FY_2019 = financial_year(2019)
URL = "https://example.org/published"


def place(peer_id: str, role: ev.PeerRole, home: str | None = "E07000001") -> ev.PeerPlace:
    return ev.PeerPlace(peer_id=peer_id, name=f"Peer {peer_id}", role=role, home_council=home)


TEAM = (place("m1", "lead_member"), place("o1", "lead_officer"), place("o2", "officer"),
        place("cm1", "challenge_manager", None))


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


class Case:
    """A case's history, written event by event with consecutive versions."""

    def __init__(self, case_id: str, council: str = "E06000001", kind: CaseKind = CPC,
                 requested: date = date(2019, 1, 7),
                 opening: ev.CaseRequested | None = None) -> None:
        self.case_id = case_id
        self.history: list[Recorded] = []
        self.add(opening or ev.CaseRequested(council=council, kind=kind, reason="Planned"),
                 noon(requested))

    def add(self, event: ev.Event, when: datetime) -> Case:
        self.history.append(Recorded(case_id=self.case_id, version=len(self.history) + 1,
                                     event_id=f"{self.case_id}-{len(self.history) + 1}",
                                     occurred_at=when, actor="officer:test", event=event))
        return self

    def team(self, team: Sequence[ev.PeerPlace] = TEAM, by: str = "engine",
             on: date = date(2019, 2, 1)) -> Case:
        selected_by = "engine" if by == "engine" else "officer"
        self.add(ev.PeerTeamProposed(team=list(team), selected_by=selected_by), noon(on))
        return self.add(ev.PeerTeamConfirmed(team=list(team)), noon(on) + timedelta(hours=1))

    def visit(self, ended_on: date, recorded_on: date | None = None) -> Case:
        return self.add(ev.VisitHeld(mode=VisitMode.ON_SITE, started_on=ended_on - timedelta(
            days=2), ended_on=ended_on), noon(recorded_on or ended_on + timedelta(days=1)))

    def report(self, published_on: date) -> Case:
        return self.add(ev.ReportPublished(report_version=1, published_on=published_on,
                                           url=URL), noon(published_on))

    def plan(self, published_on: date) -> Case:
        return self.add(ev.ActionPlanPublished(published_on=published_on, url=URL),
                        noon(published_on))


def delivered(case_id: str, council: str, ended_on: date, kind: CaseKind = CPC) -> Case:
    return Case(case_id, council, kind).team().visit(ended_on)


def ids(*case_ids: str) -> tuple[str, ...]:
    return tuple(sorted(case_ids))


def annual(histories: Sequence[Sequence[Recorded]], start: date, end: date) -> AnnualFigures:
    """`annual_figures`, checked against what `report annual` counts: each case's facts as
    the read model stores them (JSON), never built into a model (`FiguresTally.add_stored`).
    Every edge below holds both ways."""
    figures = annual_figures(histories, start, end)
    tally = FiguresTally(start, end)
    for facts in filter(None, map(facts_of, histories)):
        tally.add_stored(json.loads(facts.model_dump_json()))
    assert tally.figures() == figures
    return figures


# --- the financial year ---------------------------------------------------------------------

def test_a_financial_year_runs_from_1_april_to_31_march() -> None:
    assert financial_year(2019) == (date(2019, 4, 1), date(2020, 3, 31))
    assert financial_year_label(2019) == "2019/20"
    assert financial_year_label(1999) == "1999/00"
    assert financial_year(2023) == (date(2023, 4, 1), date(2024, 3, 31))
    assert calendar_year(2020) == (date(2020, 1, 1), date(2020, 12, 31))


def test_a_challenge_counts_in_the_year_its_visit_ended() -> None:
    histories = [delivered("before", "E06000001", date(2019, 3, 31)).history,
                 delivered("first-day", "E06000002", date(2019, 4, 1)).history,
                 delivered("last-day", "E06000003", date(2020, 3, 31)).history,
                 delivered("next-year", "E06000004", date(2020, 4, 1)).history,
                 Case("never-visited", "E06000005").team().history]
    figures = annual(histories, *FY_2019)
    assert figures.delivered == 2
    assert figures.delivered_case_ids == figures.case_ids["delivered"] == ids("first-day",
                                                                                 "last-day")
    assert annual(histories, *financial_year(2020)).delivered_case_ids == ("next-year",)
    assert annual(histories, *financial_year(2018)).delivered_case_ids == ("before",)
    # The calendar year 2020 takes the last day of 2019/20 and the first of 2020/21.
    assert annual(histories, *calendar_year(2020)).delivered_case_ids == ids(
        "last-day", "next-year")


# --- peers and LGA staff --------------------------------------------------------------------

def test_lga_staff_are_counted_apart_from_peers() -> None:
    team_1 = (place("m1", "lead_member"), place("o1", "lead_officer"), place("o2", "officer"),
              place("cm1", "challenge_manager", None),
              place("lga-adviser", "officer", None))  # no home council: the LGA's own
    team_2 = (place("m2", "lead_member"), place("o1", "lead_officer"),
              place("cm1", "challenge_manager", None))
    team_3 = (place("m3", "lead_member"), place("o3", "lead_officer"),
              place("cm2", "challenge_manager", None))
    histories = [Case("a", "E06000001").team(team_1).visit(date(2019, 6, 1)).history,
                 Case("b", "E06000002").team(team_2).visit(date(2019, 9, 1)).history,
                 Case("c", "E06000003").team(team_3).visit(date(2020, 6, 1)).history]
    figures = annual(histories, *FY_2019)
    assert (figures.officer_peers, figures.councillor_peers, figures.lga_staff) == (2, 2, 2)
    assert figures.case_ids["officer_peers"] == figures.case_ids["lga_staff"] == ids("a", "b")
    assert figures.case_ids["councillor_peers"] == ids("a", "b")
    headline = figures.headline()
    assert headline["lga_staff"] == 2 and headline["officer_peers"] == 2


def test_the_team_counted_is_the_one_confirmed_at_the_visit() -> None:
    later = (place("m9", "lead_member"), place("o9", "lead_officer"))
    case = (Case("swap").team(TEAM, by="officer").visit(date(2019, 6, 1))
            .team(later, by="engine", on=date(2019, 7, 1)))
    facts = facts_of(case.history)
    assert facts is not None
    assert [s.peer_id for s in facts.team_at_visit] == ["m1", "o1", "o2", "cm1"]
    assert facts.picked_by_at_visit == "officer" and facts.team_picked_by == "engine"
    figures = figures_from_facts([facts], *FY_2019)
    assert (figures.officer_peers, figures.councillor_peers, figures.lga_staff) == (2, 1, 1)
    assert figures.hand_picked_teams == 1 and figures.case_ids["hand_picked_teams"] == ("swap",)


# --- reports and action plans ---------------------------------------------------------------

VISIT = date(2019, 6, 1)


def test_a_report_91_days_after_the_visit_is_within_3_months_and_92_is_not() -> None:
    histories = [delivered("r91", "E06000001", VISIT).report(VISIT + timedelta(days=91)).history,
                 delivered("r92", "E06000002", VISIT).report(VISIT + timedelta(days=92)).history,
                 delivered("r0", "E06000003", VISIT).report(VISIT).history,
                 # republished after a correction: the first publication counts
                 delivered("r-again", "E06000004", VISIT).report(VISIT + timedelta(days=30))
                 .report(VISIT + timedelta(days=120)).history]
    figures = annual(histories, *FY_2019)
    assert figures.reports_published == 4
    assert figures.reports_published_within_3_months == 3
    assert figures.case_ids["reports_published_within_3_months"] == ids("r91", "r0", "r-again")
    assert figures.days_visit_to_publication == (0, 30, 91, 92)
    assert figures.median_days_visit_to_publication == 60.5
    assert figures.case_ids["median_days_visit_to_publication"] == ids("r91", "r92", "r0",
                                                                        "r-again")


def test_an_action_plan_152_days_after_the_visit_is_on_time_and_153_is_not() -> None:
    on_time = delivered("p152", "E06000001", VISIT).report(VISIT + timedelta(days=80))
    on_time.plan(VISIT + timedelta(days=152))
    late = delivered("p153", "E06000002", VISIT).report(VISIT + timedelta(days=80))
    late.plan(VISIT + timedelta(days=153))
    # The engine missed nothing here, though the plan is late by its business date: the
    # verdict is the dates', not the engine's record.
    with_report = delivered("p-with", "E06000003", VISIT).report(VISIT + timedelta(days=60))
    with_report.plan(VISIT + timedelta(days=60))
    # The engine recorded a lapse (the visit was recorded late), yet by its dates it is on time.
    lapsed = delivered("p-lapsed", "E06000004", VISIT)
    lapsed.add(ev.DeadlineMissed(deadline=DeadlineName.ACTION_PLAN_PUBLICATION,
                                 due_at=noon(VISIT + timedelta(days=140))),
               noon(VISIT + timedelta(days=140)))
    lapsed.plan(VISIT + timedelta(days=150))
    figures = annual([c.history for c in (on_time, late, with_report, lapsed)],
                             *FY_2019)
    assert (figures.action_plans_published, figures.action_plans_on_time) == (4, 3)
    assert figures.case_ids["action_plans_published"] == ids("p152", "p153", "p-with",
                                                              "p-lapsed")
    assert figures.case_ids["action_plans_on_time"] == ids("p152", "p-with", "p-lapsed")


def test_a_plan_published_after_the_year_counts_in_the_year_it_was_published() -> None:
    case = delivered("late-visit", "E06000001", date(2020, 3, 1))
    case.report(date(2020, 5, 1)).plan(date(2020, 5, 1))
    this_year = annual([case.history], *FY_2019)
    assert this_year.delivered == 1 and this_year.reports_published == 0
    next_year = annual([case.history], *financial_year(2020))
    assert next_year.delivered == 0
    assert (next_year.reports_published, next_year.reports_published_within_3_months,
            next_year.action_plans_on_time) == (1, 1, 1)
    assert next_year.days_visit_to_publication == (61,)


# --- first-time councils --------------------------------------------------------------------

def test_first_time_councils_look_through_every_case_given() -> None:
    histories = [
        # A: a corporate challenge in 2016 (say, imported from before the engine)
        delivered("a-2016", "E06000001", date(2016, 5, 1)).history,
        delivered("a-now", "E06000001", date(2019, 5, 1)).history,
        # B: only a finance challenge before: its first corporate one is this year
        delivered("b-finance", "E06000002", date(2018, 5, 1), FINANCE).history,
        delivered("b-now", "E06000002", date(2019, 6, 1)).history,
        # C: two corporate challenges this year: one council, made first-time by the first
        delivered("c-1", "E06000003", date(2019, 7, 1)).history,
        delivered("c-2", "E06000003", date(2020, 2, 1)).history,
        # D: its first one comes next year
        delivered("d-next", "E06000004", date(2020, 4, 1)).history,
        # E: a finance challenge this year is not a corporate one
        delivered("e-finance", "E06000005", date(2019, 8, 1), FINANCE).history,
    ]
    figures = annual(histories, *FY_2019)
    assert figures.first_time_councils == 2
    assert figures.first_time_council_codes == ("E06000002", "E06000003")
    assert figures.case_ids["first_time_councils"] == ids("b-now", "c-1")
    assert figures.corporate_delivered == 4
    assert figures.case_ids["corporate_delivered"] == ids("a-now", "b-now", "c-1", "c-2")
    # Without the 2016 case, A's challenge this year is its first as far as the events know.
    without = annual(histories[1:], *FY_2019)
    assert without.first_time_council_codes == ("E06000001", "E06000002", "E06000003")
    assert annual(histories, *financial_year(2020)).first_time_council_codes == (
        "E06000004",)


def test_an_imported_past_challenge_is_marked_and_counts_as_any_other() -> None:
    if "imported" not in ev.CaseRequested.model_fields:
        pytest.skip("CaseRequested has no `imported` yet")
    opening = ev.CaseRequested.model_validate({
        "council": "E06000001", "kind": CPC, "reason": "Imported from the LGA's list",
        "imported": {"file_sha256": "a" * 64, "row": 2, "events": 3}})
    case = Case("past", requested=date(2026, 1, 5), opening=opening)
    case.team(on=date(2026, 1, 5)).visit(date(2016, 5, 1), recorded_on=date(2026, 1, 5))
    facts = facts_of(case.history)
    assert facts is not None and facts.imported
    now = delivered("now", "E06000001", date(2019, 5, 1))
    assert annual([case.history, now.history], *FY_2019).first_time_councils == 0
    assert annual([case.history], *financial_year(2016)).delivered_case_ids == ("past",)


# --- escalations ----------------------------------------------------------------------------

def test_escalations_are_placed_by_the_utc_day_they_were_recorded() -> None:
    report = DeadlineName.REPORT_PUBLICATION
    case = delivered("esc", "E06000001", date(2019, 12, 1))
    case.add(ev.EscalationRaised(deadline=report, level=1, recipient="chief executive"),
             datetime(2020, 3, 1, 9, tzinfo=UTC))
    case.add(ev.EscalationRaised(deadline=report, level=2, recipient="principal adviser"),
             datetime(2020, 3, 15, 9, tzinfo=UTC))  # the same escalation, climbing
    # 00:30 on 1 April in British Summer Time is 23:30 on 31 March UTC: still 2019/20.
    case.add(ev.EscalationResolved(deadline=report, level=2),
             datetime(2020, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
    other = delivered("esc-next", "E06000002", date(2019, 12, 1))
    other.add(ev.EscalationRaised(deadline=report, level=1, recipient="chief executive"),
              datetime(2020, 4, 1, 0, 30, tzinfo=UTC))
    figures = annual([case.history, other.history], *FY_2019)
    assert (figures.escalations_raised, figures.escalations_resolved) == (1, 1)
    assert figures.case_ids["escalations_raised"] == figures.case_ids[
        "escalations_resolved"] == ("esc",)
    next_year = annual([case.history, other.history], *financial_year(2020))
    assert (next_year.escalations_raised, next_year.escalations_resolved) == (1, 0)
    assert next_year.case_ids["escalations_raised"] == ("esc-next",)


# --- every figure's cases, and the stage on a day -------------------------------------------

def test_every_figure_names_its_cases() -> None:
    full = delivered("full", "E06000001", date(2019, 5, 1))
    full.report(date(2019, 7, 1)).plan(date(2019, 8, 1))
    full.add(ev.EscalationRaised(deadline=DeadlineName.PROGRESS_REVIEW, level=1,
                                 recipient="chief executive"), noon(date(2020, 3, 1)))
    finance = Case("fin", "E06000002", FINANCE).team(by="officer").visit(date(2019, 10, 1))
    withdrawn = Case("gone", "E06000003").team()
    withdrawn.add(ev.CaseWithdrawn(reason="The council withdrew"), noon(date(2019, 5, 1)))
    figures = annual([full.history, finance.history, withdrawn.history], *FY_2019)
    assert figures.case_ids == {
        "delivered": ("fin", "full"), "corporate_delivered": ("full",),
        "hand_picked_teams": ("fin",), "first_time_councils": ("full",),
        "officer_peers": ("fin", "full"), "councillor_peers": ("fin", "full"),
        "lga_staff": ("fin", "full"),
        "reports_published": ("full",), "reports_published_within_3_months": ("full",),
        "median_days_visit_to_publication": ("full",),
        "action_plans_published": ("full",), "action_plans_on_time": ("full",),
        "escalations_raised": ("full",), "escalations_resolved": (),
    }
    traced = figures.traced()
    assert list(traced["case_ids"]) == [key for key, _ in FIGURE_LABELS]
    assert traced["case_ids"]["delivered"] == ["fin", "full"]
    assert {k: v for k, v in traced.items() if k != "case_ids"} == figures.headline()
    assert all(not isinstance(v, list | tuple | dict) for v in figures.headline().values())
    assert figures.cases == 3


def test_cases_by_stage_on_a_day_from_the_stage_changes() -> None:
    case = delivered("staged", "E06000001", date(2019, 5, 1)).report(date(2019, 7, 1))
    case.add(ev.CaseClosed(), noon(date(2020, 1, 10)))
    facts = facts_of(case.history)
    assert facts is not None
    assert [stage for _, stage in facts.stage_changes] == [
        Stage.REQUESTED, Stage.PEERS_SELECTED, Stage.VISITED, Stage.REPORT_PUBLISHED,
        Stage.CLOSED]
    assert facts.stage_on(date(2019, 1, 6)) is None
    assert facts.stage_on(date(2019, 1, 7)) == Stage.REQUESTED
    assert facts.stage_on(date(2019, 5, 1)) == Stage.PEERS_SELECTED  # recorded the next day
    assert facts.stage_on(date(2019, 5, 2)) == Stage.VISITED
    counts = cases_by_stage_on([facts], date(2019, 8, 1))
    assert list(counts) == [s.value for s in Stage]
    assert counts["report_published"] == 1 and sum(counts.values()) == 1
    assert sum(cases_by_stage_on([facts], date(2018, 12, 31)).values()) == 0
    assert cases_by_stage_on([facts], date(2020, 3, 31))["closed"] == 1


def test_councils_due_from_facts() -> None:
    facts = [f for f in (facts_of(delivered("old", "E06000001", date(2014, 6, 1)).history),
                         facts_of(delivered("new", "E06000002", date(2019, 6, 1)).history))
             if f is not None]
    assert councils_due_from_facts(["E06000001", "E06000002", "E06000003"], facts,
                                   date(2020, 1, 1)) == [("E06000003", None),
                                                         ("E06000001", date(2014, 6, 1))]


def test_a_history_that_is_not_a_case_has_no_facts() -> None:
    case = delivered("x", "E06000001", VISIT)
    assert facts_of([]) is None
    assert facts_of(case.history[1:]) is None
    assert CaseFacts.opening(case.history[1]) is None
    facts = facts_of(case.history)
    assert facts is not None
    stranger = Case("y").history[0]
    with pytest.raises(ValueError, match="case y"):
        facts.apply(stranger)


def test_an_event_that_changes_nothing_returns_the_same_facts() -> None:
    case = delivered("same", "E06000001", VISIT)
    facts = facts_of(case.history)
    assert facts is not None
    for event in (ev.FeedbackGiven(given_on=VISIT, summary="Feedback given."),
                  ev.PeerObjectedTo(peer_id="o1", reason="Conflict"),
                  ev.EscalationRaised(deadline=DeadlineName.REPORT_PUBLICATION, level=2,
                                      recipient="principal adviser"),
                  ev.VisitScheduled(mode=VisitMode.ON_SITE, starts_on=VISIT, ends_on=VISIT)):
        case.add(event, noon(VISIT + timedelta(days=3)))
        if isinstance(event, ev.VisitScheduled):  # moves the stage back: a change
            assert facts.apply(case.history[-1]).stage == Stage.VISIT_SCHEDULED
        else:
            assert facts.apply(case.history[-1]) is facts


# --- properties -----------------------------------------------------------------------------

DAY0 = date(2019, 1, 1)
_SEATS = st.sampled_from([place("m1", "lead_member"), place("m2", "member"),
                          place("o1", "lead_officer"), place("o2", "officer"),
                          place("cm1", "challenge_manager", None),
                          place("x", "officer", None)])


@st.composite
def an_event(draw: st.DrawFn) -> ev.Event:
    """Any event the figures read, or one they ignore, with dates around 2019 to 2021."""
    day = DAY0 + timedelta(days=draw(st.integers(0, 900)))
    deadline = draw(st.sampled_from(list(DeadlineName)))
    team = draw(st.lists(_SEATS, min_size=1, max_size=6, unique_by=lambda p: p.peer_id))
    choices: list[ev.Event] = [
        ev.CaseScoped(scope=["governance"], visit_mode=VisitMode.REMOTE),
        ev.PeerTeamProposed(team=team,
                            selected_by="engine" if draw(st.booleans()) else "officer"),
        ev.PeerObjectedTo(peer_id="o1", reason="Conflict"),
        ev.PeerTeamConfirmed(team=team),
        ev.VisitScheduled(mode=VisitMode.ON_SITE, starts_on=day, ends_on=day),
        ev.VisitHeld(mode=VisitMode.ON_SITE, started_on=day, ended_on=day),
        ev.FeedbackGiven(given_on=day, summary="Feedback."),
        ev.ReportDrafted(report_version=1, document_sha256="0" * 64, sent_on=day),
        ev.ReportMadeFinal(report_version=1, document_sha256="1" * 64,
                           factual_accuracy_check="no_comments"),
        ev.ReportPublished(report_version=1, published_on=day, url=URL),
        ev.ActionPlanPublished(published_on=day, url=URL),
        ev.ProgressReviewHeld(mode=VisitMode.REMOTE, started_on=day, ended_on=day),
        ev.DeadlineMissed(deadline=deadline, due_at=noon(day)),
        ev.EscalationRaised(deadline=deadline, level=draw(st.integers(1, 3)),
                            recipient="chief executive"),
        ev.EscalationResolved(deadline=deadline, level=draw(st.integers(1, 3))),
        ev.CaseWithdrawn(reason="Withdrawn"),
        ev.CaseClosed(),
    ]
    return draw(st.sampled_from(choices))


@st.composite
def a_history(draw: st.DrawFn) -> list[Recorded]:
    """A case's history in version order, recorded at increasing times (any zone)."""
    case = Case("prop", draw(st.sampled_from(["E06000001", "E09000008"])),
                draw(st.sampled_from(list(CaseKind))), requested=DAY0)
    when = noon(DAY0)
    for event in draw(st.lists(an_event(), max_size=30)):
        when += timedelta(minutes=draw(st.integers(0, 60 * 24 * 60)))
        zone = timezone(timedelta(hours=draw(st.sampled_from([0, 1, -5]))))
        case.add(event, when.astimezone(zone))
    return case.history


def _last_before(history: Sequence[Recorded], kind: type[ev.Event], end: int) -> int | None:
    """The index of the last event of `kind` before index `end`."""
    return next((i for i in range(end - 1, -1, -1) if isinstance(history[i].event, kind)),
                None)


def expected_facts(history: Sequence[Recorded]) -> dict[str, object]:
    """The facts read straight off the whole history, by looking back from the visit: an
    oracle that shares nothing with the incremental `apply`."""
    found: dict[str, object] = {}
    visit = _last_before(history, ev.VisitHeld, len(history))
    confirmed = _last_before(history, ev.PeerTeamConfirmed, visit) if visit is not None else None
    proposed = (_last_before(history, ev.PeerTeamProposed, confirmed)
                if confirmed is not None else None)
    held = history[visit].event if visit is not None else None
    found["visit_ended_on"] = held.ended_on if isinstance(held, ev.VisitHeld) else None
    team = history[confirmed].event if confirmed is not None else None
    found["team_at_visit"] = [(p.peer_id, p.role) for p in team.team] if isinstance(
        team, ev.PeerTeamConfirmed) else []
    by = history[proposed].event if proposed is not None else None
    found["picked_by_at_visit"] = by.selected_by if isinstance(by, ev.PeerTeamProposed) else None
    reports = [r.event.published_on for r in history if isinstance(r.event, ev.ReportPublished)]
    plans = [r.event.published_on for r in history if isinstance(r.event,
                                                                   ev.ActionPlanPublished)]
    found["report_published_on"] = reports[0] if reports else None
    found["action_plan_published_on"] = plans[0] if plans else None
    found["escalations_raised_on"] = [
        r.occurred_at.astimezone(UTC).date() for r in history
        if isinstance(r.event, ev.EscalationRaised) and r.event.level == 1]
    found["escalations_resolved_on"] = [r.occurred_at.astimezone(UTC).date() for r in history
                                        if isinstance(r.event, ev.EscalationResolved)]
    return found


@settings(max_examples=150, deadline=None)
@given(a_history())
def test_folding_from_any_point_gives_the_facts_of_the_whole_history(
    history: list[Recorded],
) -> None:
    whole = facts_of(history)
    assert whole is not None
    assert {
        "visit_ended_on": whole.visit_ended_on,
        "team_at_visit": [(s.peer_id, s.role) for s in whole.team_at_visit],
        "picked_by_at_visit": whole.picked_by_at_visit,
        "report_published_on": whole.report_published_on,
        "action_plan_published_on": whole.action_plan_published_on,
        "escalations_raised_on": list(whole.escalations_raised_on),
        "escalations_resolved_on": list(whole.escalations_resolved_on),
    } == expected_facts(history)
    assert CaseFacts.model_validate(whole.model_dump(mode="json")) == whole
    assert CaseFacts.model_validate_json(whole.model_dump_json()) == whole
    for split in range(1, len(history) + 1):
        stored = facts_of(history[:split])
        assert stored is not None
        # as a read model would: store the row as JSON, read it back, apply what came after
        facts = CaseFacts.model_validate(stored.model_dump(mode="json"))
        assert facts == stored
        for recorded in history[split:]:
            facts = facts.apply(recorded)
        assert facts == whole


@settings(max_examples=100, deadline=None)
@given(a_history(), st.integers(-1, 1000))
def test_the_stage_on_a_day_is_the_fold_of_the_events_recorded_by_then(
    history: list[Recorded], offset: int,
) -> None:
    facts = facts_of(history)
    assert facts is not None
    day = DAY0 + timedelta(days=offset)
    assert facts.stage_on(day) == as_of(history, end_of_day(day)).stage
    assert facts.stage == fold("prop", history).stage
