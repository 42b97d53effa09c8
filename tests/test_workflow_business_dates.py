"""Late-recorded steps on the time-skipping server (issue 17): a visit entered days after it
was held has its deadlines counted from its real last day, and one entered after its
deadline has already lapsed is escalated at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from application.journey import demo_team
from domain import commands as cmd
from domain import events as ev
from domain.deadlines import DeadlinePolicy
from domain.vocabulary import DeadlineName, Stage, VisitMode
from tests.test_workflow_journey import (
    OFFICER,
    Journeys,
    a_council,
    act,
    approved,
    at_level,
    journeys,
)
from workflows.improvement_case import ESCALATION_ACTOR

__all__ = ["journeys"]  # the fixture, used by name
REPORT_DUE = DeadlinePolicy.standard().rules_for(None).report_publication


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


async def scheduled(j: Journeys, council: str, starts_on: date, ends_on: date) -> str:
    case_id = (await j.open(council)).state.case_id
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance"],
                                        visit_mode=VisitMode.ON_SITE),
              Stage.SCOPED, ev.CaseScoped)
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=demo_team(council)),
                   Stage.SCOPED, ev.PeerTeamProposed)
    await act(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER), Stage.PEERS_SELECTED,
              ev.PeerTeamConfirmed)
    await act(j, case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                            starts_on=starts_on, ends_on=ends_on),
              Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    return case_id


async def test_a_visit_recorded_late_has_its_report_due_from_its_real_last_day(
        journeys: Journeys) -> None:
    j = journeys
    council = a_council()
    today = await j.today()
    first, last = today + timedelta(days=1), today + timedelta(days=3)
    case_id = await scheduled(j, council, first, last)
    assert (await j.cases.view(case_id)).state.business_dates
    await j.skip(timedelta(days=12))  # the officer enters it over a week after
    view = await act(j, case_id, cmd.RecordVisit(actor=OFFICER, started_on=first,
                                                 ended_on=last), Stage.VISITED, ev.VisitHeld)
    due_at = end_of(last) + REPORT_DUE
    assert view.next_deadline is not None
    assert (view.next_deadline.deadline, view.next_deadline.due_at) == (
        DeadlineName.REPORT_PUBLICATION, due_at)

    await j.skip_to(due_at - timedelta(hours=1))
    assert not (await j.cases.view(case_id)).state.missed_deadlines
    await j.skip_to(due_at + timedelta(hours=1))
    view = await j.until(case_id, at_level(1), "the report's lapse")
    missed = next(e for e in j.store.read_case(case_id) if e.type == "DeadlineMissed"
                  and e.payload["deadline"] == DeadlineName.REPORT_PUBLICATION.value)
    assert missed.to_recorded().event == ev.DeadlineMissed(
        deadline=DeadlineName.REPORT_PUBLICATION, due_at=due_at)
    assert missed.actor == ESCALATION_ACTOR


async def test_a_visit_entered_after_its_deadline_lapses_and_escalates_at_once(
        journeys: Journeys) -> None:
    j = journeys
    council = a_council()
    today = await j.today()
    first, last = today + timedelta(days=1), today + timedelta(days=2)
    case_id = await scheduled(j, council, first, last)
    await j.skip(timedelta(days=120))  # nobody entered it for four months
    recorded_at = await j.now()
    await j.cases.act(case_id, cmd.RecordVisit(actor=OFFICER, started_on=first, ended_on=last))
    view = await j.until(case_id, at_level(1), "the lapse found on entry")
    assert view.state.stage == Stage.VISITED
    stored = j.store.read_case(case_id)
    held = next(i for i, e in enumerate(stored) if e.type == "VisitHeld")
    assert [e.type for e in stored[held + 1:held + 3]] == ["DeadlineMissed", "EscalationRaised"]
    assert stored[held + 1].to_recorded().event == ev.DeadlineMissed(
        deadline=DeadlineName.REPORT_PUBLICATION, due_at=end_of(last) + REPORT_DUE)
    assert stored[held + 1].occurred_at - recorded_at < timedelta(hours=1)  # no waiting
