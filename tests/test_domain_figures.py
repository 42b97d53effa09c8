"""The annual figures of BRIEF §2 (domain.figures), against counts this test works out itself.

A year of cases is planned at random (seeded), then driven through the domain rules and the
deadline engine into event histories, as the workflow would record them. The expected figures
come from the plans and the brief's rules (3 months = 91 days, 5 months = 152, counted from
the visit's last day; LGA staff are not peers), never from the events through figures.py.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain import commands as cmd
from domain import events as ev
from domain.checkpoints import CheckpointRecorded
from domain.figures import (
    FIGURE_LABELS,
    AnnualFigures,
    FiguresTally,
    annual_figures,
    cases_by_stage,
    cases_by_stage_on,
    councils_due,
    councils_due_from_facts,
    facts_of,
    figures_from_facts,
    last_corporate_visits,
    last_corporate_visits_from_facts,
)
from domain.peers import SelectionRules
from domain.recorded import Recorded
from domain.state import CaseState, fold
from domain.timeline import as_of, end_of_day
from domain.vocabulary import CaseKind, Stage, VisitMode
from tests.test_domain_timeline import OFFICER, Driver, at, doc

START, END = date(2025, 1, 1), date(2025, 12, 31)
COUNCILS = [f"E06{n:06d}" for n in range(1, 21)]
OFFICERS = [f"o{n:02d}" for n in range(1, 81)] + ["x-both"]
MEMBERS = [f"m{n:02d}" for n in range(1, 51)] + ["x-both"]
MANAGERS = ["cm1", "cm2", "cm3"]
REPORT_DAYS, PLAN_DAYS = timedelta(days=91), timedelta(days=152)


@dataclass(frozen=True)
class Plan:
    case_id: str
    council: str
    kind: CaseKind
    visit_end: date | None
    """None: withdrawn before the visit."""
    team: tuple[ev.PeerPlace, ...]
    objected: ev.PeerPlace | None
    publish_delay: int | None
    """Days from the visit's end to the report's publication; None: not (yet) published."""
    plan_extra: int | None
    """Days from the report's publication to the action plan's; None: no action plan yet.
    At most 140 + 110 days after the visit: before the progress review's deadline."""
    withdrawn_after_visit: bool
    lapse_unanswered: bool = False
    engine_selected: bool = False
    """The team on the table at confirmation was the engine's; otherwise hand-picked."""
    """Not published, and the engine ran on 100 days past the visit: a lapse left open."""

    @property
    def corporate(self) -> bool:
        return self.kind == CaseKind.CORPORATE_PEER_CHALLENGE

    @property
    def visit_recorded_at(self) -> datetime:
        assert self.visit_end is not None
        return at(self.visit_end + timedelta(days=1), 10)

    @property
    def published_at(self) -> datetime | None:
        if self.visit_end is None or self.publish_delay is None:
            return None
        return at(self.visit_end + timedelta(days=self.publish_delay), 12)

    @property
    def plan_at(self) -> datetime | None:
        published = self.published_at
        if published is None or self.plan_extra is None:
            return None
        return at(published.date() + timedelta(days=self.plan_extra), 15)


def _place(rng: random.Random, peer_id: str, role: Any) -> ev.PeerPlace:
    home = None if role == "challenge_manager" else f"E07{rng.randrange(1, 999999):06d}"
    return ev.PeerPlace(peer_id=peer_id, name=f"Peer {peer_id}", role=role, home_council=home)


def _team(rng: random.Random) -> tuple[tuple[ev.PeerPlace, ...], ev.PeerPlace | None]:
    officers = rng.sample(OFFICERS, 5)
    members = [m for m in rng.sample(MEMBERS, 3) if m not in officers][:3]
    seats = [_place(rng, members[0], "lead_member"), _place(rng, officers[0], "lead_officer")]
    seats += [_place(rng, o, "officer") for o in officers[1:rng.randint(2, 4)]]
    seats += [_place(rng, m, "member") for m in members[1:rng.randint(1, len(members))]]
    seats.append(_place(rng, rng.choice(MANAGERS), "challenge_manager"))
    objected = _place(rng, officers[4], "officer") if rng.random() < 0.25 else None
    return tuple(seats), objected


def plan_year(seed: int) -> list[Plan]:
    rng = random.Random(seed)
    plans: list[Plan] = []

    def add(visit_end: date | None, kind: CaseKind | None = None, council: str | None = None,
            publish_delay: int | None = -1, plan_extra: int | None = -1) -> None:
        n = len(plans)
        team, objected = _team(rng)
        delay = publish_delay
        if publish_delay == -1:
            delay = None if rng.random() < 0.15 else rng.randint(20, 140)
        withdrawn_after = visit_end is not None and publish_delay == -1 and rng.random() < 0.1
        if withdrawn_after:
            delay = None
        extra = None if delay is None or rng.random() < 0.15 else rng.choice(
            [0, rng.randint(1, 110)])
        if plan_extra != -1:
            extra = plan_extra
        unanswered = (visit_end is not None and delay is None and not withdrawn_after
                      and rng.random() < 0.5)
        plans.append(Plan(
            case_id=f"case-{seed}-{n:03d}", council=council or rng.choice(COUNCILS),
            kind=kind or rng.choice([CaseKind.CORPORATE_PEER_CHALLENGE] * 4 + list(CaseKind)),
            visit_end=visit_end, team=team, objected=objected, publish_delay=delay,
            plan_extra=extra, withdrawn_after_visit=withdrawn_after,
            lapse_unanswered=unanswered, engine_selected=n % 3 != 0))

    # Earlier years: a history for "first time" and "due" to look back through.
    for _ in range(10):
        add(date(2018, 1, 1) + timedelta(days=rng.randrange(0, 7 * 365 - 60)))
    # The edges of the period, exactly.
    add(START, CaseKind.CORPORATE_PEER_CHALLENGE, COUNCILS[0], publish_delay=60)
    add(END, CaseKind.CORPORATE_PEER_CHALLENGE, COUNCILS[1], publish_delay=None)
    add(START - timedelta(days=1), CaseKind.CORPORATE_PEER_CHALLENGE, COUNCILS[2],
        publish_delay=95)
    add(END - timedelta(days=100), CaseKind.FINANCE, COUNCILS[3], publish_delay=100)
    add(date(2025, 3, 1), CaseKind.PLANNING, COUNCILS[4], publish_delay=100, plan_extra=80)
    # The year itself, spilling over both of its ends; about one in six withdrawn before.
    for _ in range(40):
        visit = START - timedelta(days=60) + timedelta(days=rng.randrange(0, 365 + 90))
        add(None if rng.random() < 0.15 else visit)
    return plans


def selection_record(visit_from: date, visit_to: date) -> ev.PeerSelectionRecord:
    return ev.PeerSelectionRecord(algorithm="peer-selection/1", seed=7, pool_version=1,
                                  pool_digest="0" * 64, scope=["governance"],
                                  visit_from=visit_from, visit_to=visit_to,
                                  rules=SelectionRules())


def history_of(plan: Plan) -> list[Recorded]:
    """Drive the plan through the rules, the deadline engine recording lapses as they fall."""
    d = Driver(plan.case_id)
    contact = f"council:{plan.council}"
    visit_end = plan.visit_end or date(2025, 6, 1)
    visit_start = visit_end - timedelta(days=2)
    requested = visit_start - timedelta(days=40)
    d.act(cmd.RequestCase(actor=OFFICER, case_id=plan.case_id, council=plan.council,
                          kind=plan.kind, reason="Planned"), at(requested, 9))
    d.act(cmd.ScopeCase(actor=OFFICER, scope=["governance"], visit_mode=VisitMode.ON_SITE),
          at(requested + timedelta(days=1)))
    if plan.objected is not None:
        d.act(cmd.ProposePeerTeam(actor=OFFICER, team=[*plan.team, plan.objected]),
              at(requested + timedelta(days=2)))
        d.act(cmd.ObjectToPeer(actor=contact, peer_id=plan.objected.peer_id,
                               reason="Conflict of interest"), at(requested + timedelta(days=3)))
    if plan.engine_selected:  # as the workflow records the selection activity's answer
        d.record([ev.PeerTeamProposed(team=list(plan.team), selected_by="engine",
                                      selection=selection_record(visit_start, visit_end))],
                 at(requested + timedelta(days=4)), OFFICER)
    else:
        d.act(cmd.ProposePeerTeam(actor=OFFICER, team=list(plan.team)),
              at(requested + timedelta(days=4)))
    d.act(cmd.ConfirmPeerTeam(actor=OFFICER), at(requested + timedelta(days=5)))
    if plan.visit_end is None:
        d.act(cmd.WithdrawCase(actor=OFFICER, reason="The council withdrew"),
              at(requested + timedelta(days=6)))
        return d.history
    d.act(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=visit_start,
                            ends_on=visit_end), at(requested + timedelta(days=6)))
    d.act(cmd.RecordVisit(actor=OFFICER, started_on=visit_start, ended_on=visit_end),
          plan.visit_recorded_at)
    d.act(cmd.GiveFeedback(actor=OFFICER, given_on=visit_end, summary="Feedback given."),
          plan.visit_recorded_at + timedelta(hours=1))
    sent = visit_end + timedelta(days=3)
    d.act(cmd.DraftReport(actor=OFFICER, document_sha256=doc(f"{plan.case_id} draft"),
                          sent_on=sent), at(sent))
    d.act(cmd.SubmitFactualAccuracyComments(actor=contact, comments="Two corrections."),
          at(sent + timedelta(days=2)))
    d.act(cmd.FinaliseReport(actor=OFFICER, document_sha256=doc(f"{plan.case_id} final")),
          at(sent + timedelta(days=5)))
    if plan.withdrawn_after_visit:
        d.act(cmd.WithdrawCase(actor=OFFICER, reason="Council reorganised"),
              at(sent + timedelta(days=6)))
    published, plan_at = plan.published_at, plan.plan_at
    if published is not None:
        d.act(cmd.PublishReport(actor=contact, published_on=published.date(),
                                url="https://example.org/r"), published)
    if plan_at is not None:
        d.act(cmd.PublishActionPlan(actor=contact, published_on=plan_at.date(),
                                    url="https://example.org/p"), plan_at)
    if plan.lapse_unanswered:
        d.catch_up(plan.visit_recorded_at + timedelta(days=100))
    return d.history


def expected_figures(plans: Sequence[Plan], start: date, end: date) -> dict[str, Any]:
    """The headline figures worked out from the plans and the brief's rules alone."""

    def within(day: date | None) -> bool:
        return day is not None and start <= day <= end

    delivered = [p for p in plans if within(p.visit_end)]
    corporate = [p for p in delivered if p.corporate]
    before = {p.council for p in plans if p.corporate and p.visit_end and p.visit_end < start}
    officers = {s.peer_id for p in delivered for s in p.team
                if s.role in ("lead_officer", "officer") and s.home_council is not None}
    councillors = {s.peer_id for p in delivered for s in p.team
                   if s.role in ("lead_member", "member") and s.home_council is not None}
    staff = {s.peer_id for p in delivered for s in p.team
             if s.role == "challenge_manager" or s.home_council is None}
    published = [p for p in plans if p.published_at and within(p.published_at.date())]
    days = [p.publish_delay for p in published if p.publish_delay is not None]
    with_plan = [p for p in plans if p.plan_at and within(p.plan_at.date())]
    on_time = [p for p in with_plan if p.plan_at and p.visit_end
               and (p.plan_at.date() - p.visit_end).days <= PLAN_DAYS.days]
    raised = resolved = 0
    for p in plans:
        for done, allowed in ((p.published_at, REPORT_DAYS), (p.plan_at, PLAN_DAYS)):
            if done is not None and done >= p.visit_recorded_at + allowed:
                raised += within((p.visit_recorded_at + allowed).date())
                resolved += within(done.date())
        if p.lapse_unanswered:
            raised += within((p.visit_recorded_at + REPORT_DAYS).date())
    return {
        "delivered": len(delivered), "corporate_delivered": len(corporate),
        "first_time_councils": len({p.council for p in corporate} - before),
        "hand_picked_teams": sum(1 for p in delivered if not p.engine_selected),
        "officer_peers": len(officers), "councillor_peers": len(councillors),
        "lga_staff": len(staff), "reports_published": len(published),
        "reports_published_within_3_months": sum(1 for d in days if d <= REPORT_DAYS.days),
        "median_days_visit_to_publication": float(statistics.median(days)) if days else None,
        "action_plans_published": len(with_plan), "action_plans_on_time": len(on_time),
        "escalations_raised": raised, "escalations_resolved": resolved,
    }


def expected_case_ids(plans: Sequence[Plan], start: date, end: date) -> dict[str, tuple[str, ...]]:
    """The cases behind each figure, worked out from the plans alone."""

    def within(day: date | None) -> bool:
        return day is not None and start <= day <= end

    def ids(chosen: Any) -> tuple[str, ...]:
        return tuple(sorted(p.case_id for p in chosen))

    delivered = [p for p in plans if within(p.visit_end)]
    first: dict[str, date] = {}
    for p in plans:
        if p.corporate and p.visit_end is not None:
            first[p.council] = min(p.visit_end, first.get(p.council, p.visit_end))
    published = [p for p in plans if p.published_at and within(p.published_at.date())]
    with_plan = [p for p in plans if p.plan_at and within(p.plan_at.date())]
    raised, resolved = [], []
    for p in plans:
        lapses = [(done, allowed) for done, allowed in ((p.published_at, REPORT_DAYS),
                                                        (p.plan_at, PLAN_DAYS))
                  if done is not None and done >= p.visit_recorded_at + allowed]
        due = [(p.visit_recorded_at + allowed).date() for _, allowed in lapses]
        if p.lapse_unanswered:
            due.append((p.visit_recorded_at + REPORT_DAYS).date())
        if any(map(within, due)):
            raised.append(p)
        if any(within(done.date()) for done, _ in lapses if done is not None):
            resolved.append(p)
    return {
        "delivered": ids(delivered),
        "corporate_delivered": ids(p for p in delivered if p.corporate),
        "hand_picked_teams": ids(p for p in delivered if not p.engine_selected),
        "first_time_councils": ids(p for p in delivered if p.corporate
                                   and p.visit_end == first[p.council]),
        # Every generated team has an officer, a councillor and a challenge manager.
        "officer_peers": ids(delivered), "councillor_peers": ids(delivered),
        "lga_staff": ids(delivered),
        "reports_published": ids(published),
        "reports_published_within_3_months": ids(
            p for p in published if p.publish_delay is not None
            and p.publish_delay <= REPORT_DAYS.days),
        "median_days_visit_to_publication": ids(published),
        "action_plans_published": ids(with_plan),
        "action_plans_on_time": ids(
            p for p in with_plan if p.plan_at and p.visit_end
            and (p.plan_at.date() - p.visit_end).days <= PLAN_DAYS.days),
        "escalations_raised": ids(raised), "escalations_resolved": ids(resolved),
    }


@pytest.fixture(scope="module", params=[2025, 7, 31337])
def year(request: pytest.FixtureRequest) -> tuple[list[Plan], list[list[Recorded]]]:
    plans = plan_year(request.param)
    return plans, [history_of(p) for p in plans]


def test_the_generated_year_exercises_every_figure(
    year: tuple[list[Plan], list[list[Recorded]]],
) -> None:
    plans, histories = year
    types = {r.event.type_name() for h in histories for r in h}
    assert {"PeerObjectedTo", "DeadlineMissed", "EscalationRaised", "EscalationResolved",
            "ActionPlanPublished", "CaseWithdrawn"} <= types
    expected = expected_figures(plans, START, END)
    assert expected["delivered"] >= 20 and expected["escalations_raised"] >= 1
    assert 0 < expected["first_time_councils"] < expected["corporate_delivered"]
    assert 0 < expected["hand_picked_teams"] < expected["delivered"]
    assert expected["action_plans_on_time"] < expected["action_plans_published"]
    assert 0 < expected["reports_published_within_3_months"] < expected["reports_published"]
    assert any(p.lapse_unanswered for p in plans)


def test_annual_figures_match_the_independent_count(
    year: tuple[list[Plan], list[list[Recorded]]],
) -> None:
    plans, histories = year
    figures = annual_figures(histories, START, END)
    assert figures.headline() == {"start": "2025-01-01", "end": "2025-12-31",
                                  **expected_figures(plans, START, END)}
    assert figures.case_ids == expected_case_ids(plans, START, END)
    assert figures.traced() == {**figures.headline(), "case_ids": {
        key: list(ids) for key, ids in expected_case_ids(plans, START, END).items()}}
    assert list(figures.traced()["case_ids"]) == [key for key, _ in FIGURE_LABELS]
    assert figures.cases == len(plans)
    delivered = sorted(p.case_id for p in plans if p.visit_end and START <= p.visit_end <= END)
    assert list(figures.delivered_case_ids) == delivered
    days = sorted(p.publish_delay for p in plans if p.published_at and p.publish_delay
                  is not None and START <= p.published_at.date() <= END)
    assert list(figures.days_visit_to_publication) == days


@pytest.mark.parametrize(("start", "end"), [
    (date(2024, 1, 1), date(2024, 12, 31)),
    (date(2025, 4, 1), date(2026, 3, 31)),  # a financial year
    (date(2025, 12, 31), date(2025, 12, 31)),
    (date(2019, 1, 1), date(2026, 12, 31)),
])
def test_any_period(year: tuple[list[Plan], list[list[Recorded]]], start: date,
                    end: date) -> None:
    plans, histories = year
    figures = annual_figures(histories, start, end)
    assert {k: v for k, v in figures.headline().items() if k not in ("start", "end")} == (
        expected_figures(plans, start, end))
    assert figures.case_ids == expected_case_ids(plans, start, end)
    facts = [f for f in map(facts_of, histories) if f is not None]
    assert figures_from_facts(facts, start, end) == figures


@pytest.mark.parametrize(("start", "end"), [
    (date(2025, 4, 1), date(2026, 3, 31)),
    (date(2025, 12, 31), date(2025, 12, 31)),
    (date(2019, 1, 1), date(2026, 12, 31)),
])
def test_counting_the_stored_json_gives_the_figures_of_the_facts(
        year: tuple[list[Plan], list[list[Recorded]]], start: date, end: date) -> None:
    """What `report annual` counts: each case's facts as the read model stores them (JSON),
    never built into a model; the same figures, and the same cases behind each."""
    _, histories = year
    facts = [f for f in map(facts_of, histories) if f is not None]
    tally = FiguresTally(start, end)
    for case in facts:
        tally.add_stored(json.loads(case.model_dump_json()))
    assert tally.figures() == figures_from_facts(facts, start, end)


def test_the_order_of_histories_does_not_matter(
    year: tuple[list[Plan], list[list[Recorded]]],
) -> None:
    _, histories = year
    shuffled = list(histories)
    random.Random(1).shuffle(shuffled)
    assert annual_figures(iter(shuffled), START, END) == annual_figures(histories, START, END)


def test_the_edges_of_the_period_count(year: tuple[list[Plan], list[list[Recorded]]]) -> None:
    plans, histories = year
    figures = annual_figures(histories, START, END)
    on_start, on_end, day_before, published_on_end = plans[10:14]
    assert on_start.case_id in figures.delivered_case_ids
    assert on_end.case_id in figures.delivered_case_ids
    assert day_before.case_id not in figures.delivered_case_ids
    assert published_on_end.published_at is not None
    assert published_on_end.published_at.date() == END
    assert 100 in figures.days_visit_to_publication
    # Its lapse was resolved on the last day of the period: counted in this period, not next.
    history = next(h for h in histories if h[0].case_id == published_on_end.case_id)
    resolved = [r for r in history if isinstance(r.event, ev.EscalationResolved)
                and r.event.deadline == "report_publication"]
    assert [r.occurred_at.date() for r in resolved] == [END]
    next_year = annual_figures(histories, END + timedelta(days=1), date(2026, 12, 31))
    assert next_year.escalations_resolved == expected_figures(
        plans, END + timedelta(days=1), date(2026, 12, 31))["escalations_resolved"]


def test_first_time_looks_before_the_period_only() -> None:
    def case(case_id: str, council: str, visit_end: date, kind: CaseKind) -> list[Recorded]:
        team, _ = _team(random.Random(case_id))
        return history_of(Plan(case_id=case_id, council=council, kind=kind, visit_end=visit_end,
                               team=team, objected=None, publish_delay=None, plan_extra=None,
                               withdrawn_after_visit=False))

    cpc, finance = CaseKind.CORPORATE_PEER_CHALLENGE, CaseKind.FINANCE
    histories = [
        case("a-old", "E06000001", date(2020, 5, 1), cpc),     # had one before
        case("a-new", "E06000001", date(2025, 5, 1), cpc),
        case("b-fin", "E06000002", date(2021, 5, 1), finance),  # only a finance one before
        case("b-new", "E06000002", date(2025, 6, 1), cpc),
        case("c-1", "E06000003", date(2025, 2, 1), cpc),        # two in the year: one council
        case("c-2", "E06000003", date(2025, 11, 1), cpc),
        case("d-next", "E06000004", date(2026, 2, 1), cpc),     # after the period
    ]
    figures = annual_figures(histories, START, END)
    assert figures.first_time_council_codes == ("E06000002", "E06000003")
    assert figures.corporate_delivered == 4 and figures.delivered == 4
    later = annual_figures(histories, date(2026, 1, 1), date(2026, 12, 31))
    assert later.first_time_council_codes == ("E06000004",)


def test_peers_of_a_case_count_once_per_kind_of_role() -> None:
    rng = random.Random(3)

    def seat(peer_id: str, role: Any) -> ev.PeerPlace:
        return _place(rng, peer_id, role)

    team_1 = (seat("m01", "lead_member"), seat("o01", "lead_officer"), seat("o02", "officer"),
              seat("x-both", "officer"), seat("cm1", "challenge_manager"))
    team_2 = (seat("m02", "lead_member"), seat("o02", "lead_officer"), seat("x-both", "member"),
              seat("m01", "member"), seat("cm1", "challenge_manager"))
    histories = [history_of(Plan(case_id=f"peer-{n}", council="E06000009",
                                 kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 visit_end=date(2025, 3 + n, 1), team=team,
                                 objected=ev.PeerPlace(peer_id="o-objected", name="No",
                                                       role="officer", home_council="E07000002"),
                                 publish_delay=None, plan_extra=None,
                                 withdrawn_after_visit=False))
                 for n, team in enumerate((team_1, team_2))]
    figures = annual_figures(histories, START, END)
    # Officers o01, o02 (twice, in two roles), x-both; councillors m01 (twice), m02, x-both;
    # cm1 (twice) is the LGA's challenge manager: staff, not a peer. The objected-to peer was
    # proposed, never confirmed.
    assert (figures.officer_peers, figures.councillor_peers, figures.lga_staff) == (3, 3, 1)
    both = ("peer-0", "peer-1")
    assert figures.case_ids["officer_peers"] == figures.case_ids["lga_staff"] == both


def test_a_stream_that_is_not_a_case_is_skipped(
    year: tuple[list[Plan], list[list[Recorded]]],
) -> None:
    _, histories = year
    checkpoint = Recorded(case_id="checkpoints", version=1, event_id="c1", actor="system:cp",
                          occurred_at=datetime(2025, 6, 1, tzinfo=UTC),
                          event=CheckpointRecorded(heads=[], merkle_root="0" * 64,
                                                   last_position=0))
    with_it = annual_figures([*histories, [checkpoint], []], START, END)
    assert with_it == annual_figures(histories, START, END)


def test_the_table_rows_follow_the_labels(
    year: tuple[list[Plan], list[list[Recorded]]],
) -> None:
    figures = annual_figures(year[1], START, END)
    rows = figures.rows()
    assert [key for key, _, _ in rows] == [key for key, _ in FIGURE_LABELS]
    assert all(getattr(figures, key) == value for key, _, value in rows)
    assert AnnualFigures.model_validate_json(figures.model_dump_json()) == figures
    with pytest.raises(ValueError, match="before it starts"):
        annual_figures(year[1], END, START)


def test_nothing_in_the_period() -> None:
    figures = annual_figures([], START, END)
    assert figures.delivered == 0 and figures.median_days_visit_to_publication is None


def test_cases_by_stage(year: tuple[list[Plan], list[list[Recorded]]]) -> None:
    plans, histories = year
    states = [fold(h[0].case_id, h) for h in histories]
    counts = cases_by_stage([*states, CaseState(case_id="empty")])
    assert list(counts) == [s.value for s in Stage]
    assert sum(counts.values()) == len(plans)
    withdrawn = sum(1 for p in plans if p.visit_end is None or p.withdrawn_after_visit)
    assert counts["withdrawn"] == withdrawn
    with_plan = sum(1 for p in plans if p.plan_at is not None)
    assert counts["action_plan_published"] == with_plan
    assert counts["closed"] == 0


@pytest.mark.parametrize("day", [date(2024, 11, 3), START, date(2025, 7, 14), END,
                                 date(2027, 1, 1)])
def test_cases_by_stage_on_a_day_equals_the_fold_as_of_that_night(
    year: tuple[list[Plan], list[list[Recorded]]], day: date,
) -> None:
    _, histories = year
    facts = [f for f in map(facts_of, histories) if f is not None]
    assert cases_by_stage_on(facts, day) == cases_by_stage(
        [as_of(h, end_of_day(day)) for h in histories])


def test_councils_due_from_the_generated_histories(
    year: tuple[list[Plan], list[list[Recorded]]],
) -> None:
    plans, histories = year
    today = date(2026, 6, 1)
    never = ["E09000001", "E09000002"]
    last: dict[str, date] = {}
    for p in plans:
        if p.corporate and p.visit_end is not None:
            last[p.council] = max(p.visit_end, last.get(p.council, p.visit_end))
    due = councils_due([*COUNCILS, *never], histories, today)
    expected = {c: last.get(c) for c in [*COUNCILS, *never]
                if c not in last or last[c] <= date(2021, 6, 1)}
    assert dict(due) == expected
    assert [c for c, d in due if d is None] == sorted(c for c, d in expected.items() if d is None)
    dated = [d for _, d in due if d is not None]
    assert dated == sorted(dated)
    assert last_corporate_visits(histories) == last
    facts = [f for f in map(facts_of, histories) if f is not None]
    assert last_corporate_visits_from_facts(facts) == last
    assert councils_due_from_facts([*COUNCILS, *never], facts, today) == due


def test_councils_due_at_the_five_year_boundary() -> None:
    def visited(council: str, day: date) -> list[Recorded]:
        team, _ = _team(random.Random(council))
        return history_of(Plan(case_id=f"due-{council}", council=council,
                               kind=CaseKind.CORPORATE_PEER_CHALLENGE, visit_end=day, team=team,
                               objected=None, publish_delay=None, plan_extra=None,
                               withdrawn_after_visit=False))

    histories = [visited("E06000001", date(2021, 3, 1)), visited("E06000002", date(2021, 3, 2)),
                 visited("E06000003", date(2019, 2, 28))]
    today = date(2026, 3, 1)
    assert councils_due(["E06000002", "E06000001", "E06000003", "E06000004"], histories,
                        today) == [("E06000004", None), ("E06000003", date(2019, 2, 28)),
                                   ("E06000001", date(2021, 3, 1))]
    assert councils_due(["E06000001"], histories, today, years=6) == []
    # 29 February: five years before is taken as 28 February.
    assert councils_due(["E06000003"], histories, date(2024, 2, 29), years=5) == [
        ("E06000003", date(2019, 2, 28))]
