"""Business dates (issue 17, BRIEF §5): a step entered late is recorded with the dates it
happened, the rules check those dates against each other, and the deadlines count from them.

A case opened since business dates says so in its request (`business_dates`); a case opened
before keeps counting from recorded times, so its running deadlines never move.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain import commands as cmd
from domain import events as ev
from domain.deadlines import DeadlinePolicy, next_deadline, next_due, on_due
from domain.peers import SelectionRules
from domain.upcasting import parse_event
from domain.vocabulary import DeadlineName, Stage, VisitMode
from tests.test_domain_rules import (
    CASE_ID,
    CONTACT,
    COUNCIL,
    CPC,
    OFFICER,
    TEAM,
    Case,
    document,
)

STANDARD = DeadlinePolicy.standard()


def opened(*, business_dates: bool = True, requested_on: date | None = None,
           team: bool = True) -> Case:
    """A case as the workflow opens it today (business dates) or opened it before; with its
    peer team hand-picked and confirmed unless `team` is False."""
    case = Case()
    case.do(cmd.RequestCase(actor=OFFICER, case_id=CASE_ID, council=COUNCIL, kind=CPC,
                            reason="Budget gap", scope=["finance"], four_eyes=False,
                            business_dates=business_dates, requested_on=requested_on),
            after=timedelta(0))
    case.do(cmd.ScopeCase(actor=OFFICER, scope=["finance"], visit_mode=VisitMode.ON_SITE))
    if team:
        case.do(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM, rationale=["fewest days served"]))
        case.do(cmd.ConfirmPeerTeam(actor=OFFICER))
    return case


def scheduled(case: Case, starts_on: date, ends_on: date) -> Case:
    case.do(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=starts_on,
                              ends_on=ends_on))
    return case


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def test_a_visit_recorded_a_week_late_has_its_report_due_from_its_real_last_day() -> None:
    case = scheduled(opened(), date(2026, 3, 10), date(2026, 3, 12))
    case.now = datetime(2026, 3, 19, 10, 0, tzinfo=UTC)  # entered a week after
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 10),
                            ended_on=date(2026, 3, 12)), after=timedelta(0))
    due = next_deadline(case.state, STANDARD)
    assert due is not None and due.deadline == DeadlineName.REPORT_PUBLICATION
    assert due.due_at == end_of(date(2026, 3, 12)) + timedelta(days=91)


def test_a_case_opened_before_business_dates_still_counts_from_when_it_was_recorded() -> None:
    case = scheduled(opened(business_dates=False), date(2026, 3, 10), date(2026, 3, 12))
    case.now = datetime(2026, 3, 19, 10, 0, tzinfo=UTC)
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 10),
                            ended_on=date(2026, 3, 12)), after=timedelta(0))
    due = next_deadline(case.state, STANDARD)
    assert due is not None and due.due_at == case.now + timedelta(days=91)


def test_a_visit_recorded_on_its_last_day_counts_from_when_it_was_recorded() -> None:
    """Sooner of the two: what lets demo deadlines of seconds lapse while you watch."""
    case = scheduled(opened(), date(2026, 3, 2), date(2026, 3, 2))
    case.now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 2),
                            ended_on=date(2026, 3, 2)), after=timedelta(0))
    due = next_deadline(case.state, DeadlinePolicy.demo(5))
    assert due is not None and due.due_at == case.now + timedelta(seconds=15)


def test_a_visit_entered_after_its_deadline_has_already_lapsed_and_escalates() -> None:
    case = scheduled(opened(), date(2026, 3, 3), date(2026, 3, 5))
    case.now = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)  # five months later
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 3),
                            ended_on=date(2026, 3, 5)), after=timedelta(0))
    due = next_due(case.state, STANDARD)
    assert due is not None and due.due_at < case.now
    assert due.deadline == DeadlineName.REPORT_PUBLICATION
    events = on_due(case.state, due, case.now, STANDARD)  # a reminder too late is a lapse
    assert [type(e) for e in events] == [ev.DeadlineMissed, ev.EscalationRaised]


def test_a_visit_may_be_scheduled_in_the_past_but_not_before_the_request() -> None:
    case = opened(requested_on=date(2026, 2, 20))
    assert case.state.requested_on == date(2026, 2, 20)
    assert case.refused(cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=date(2026, 2, 19),
        ends_on=date(2026, 2, 20))) == (
        "cannot schedule the visit: 2026-02-19 is before the case was requested (2026-02-20)")
    scheduled(case, date(2026, 2, 24), date(2026, 2, 26))
    assert case.state.stage == Stage.VISIT_SCHEDULED


def test_a_request_dated_in_the_future_is_refused() -> None:
    case = Case()
    tomorrow = case.today + timedelta(days=1)
    assert case.refused(cmd.RequestCase(
        actor=OFFICER, case_id=CASE_ID, council=COUNCIL, kind=CPC, reason="Budget gap",
        business_dates=True, requested_on=tomorrow)) == (
        f"cannot request the case: {tomorrow} is in the future (today is {case.today})")


def test_a_visit_is_not_held_before_it_was_scheduled_to_start() -> None:
    case = scheduled(opened(), date(2026, 3, 10), date(2026, 3, 12))
    case.now = datetime(2026, 3, 20, tzinfo=UTC)
    assert case.refused(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 9),
                                        ended_on=date(2026, 3, 11))) == (
        "cannot record the visit: 2026-03-09 is before the visit was scheduled to start "
        "(2026-03-10); schedule it again with the dates it was held, first")
    assert case.refused(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 10),
                                        ended_on=date(2026, 3, 21))).startswith(
        "cannot record the visit: 2026-03-21 is in the future (today is 2026-03-20)")


def test_a_visit_falls_within_the_dates_the_team_was_selected_for() -> None:
    case = opened(team=False)
    selection = ev.PeerSelectionRecord(
        algorithm="test", seed=1, pool_version=1, pool_digest=document("pool"),
        scope=["finance"], visit_from=date(2026, 3, 9), visit_to=date(2026, 3, 13),
        rules=SelectionRules())
    case.record("system:peer-selection", [ev.PeerTeamProposed(
        team=TEAM, selected_by="engine", selection=selection)])
    case.do(cmd.ConfirmPeerTeam(actor=OFFICER))
    scheduled(case, date(2026, 3, 10), date(2026, 3, 12))
    case.now = datetime(2026, 3, 20, tzinfo=UTC)
    assert case.refused(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 12),
                                        ended_on=date(2026, 3, 14))) == (
        "cannot record the visit from 2026-03-12 to 2026-03-14: the peer team was selected as "
        "accredited and available from 2026-03-09 to 2026-03-13; a visit on other dates needs "
        "a team selected for them")


def _drafted(case: Case) -> Case:
    case.now = datetime(2026, 3, 13, 9, 0, tzinfo=UTC)
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 3, 10),
                            ended_on=date(2026, 3, 12)), after=timedelta(0))
    case.do(cmd.GiveFeedback(actor=OFFICER, given_on=date(2026, 3, 12), summary="Good"))
    case.now = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)  # entered three days after it was sent
    case.do(cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                            sent_on=date(2026, 3, 13)))
    return case


def test_a_publication_is_not_dated_before_the_report_was_made_final() -> None:
    case = _drafted(scheduled(opened(), date(2026, 3, 10), date(2026, 3, 12)))
    case.wait(timedelta(days=30))
    assert case.refused(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final"),
                                           final_on=date(2026, 3, 12))) == (
        "cannot make the report final: 2026-03-12 is before the draft was sent (2026-03-13)")
    case.do(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final"),
                               final_on=date(2026, 3, 27)))
    assert case.state.report_final_on == date(2026, 3, 27)
    assert case.refused(cmd.PublishReport(actor=CONTACT, published_on=date(2026, 3, 26),
                                          url="https://example.org/r")) == (
        "cannot record the report's publication: 2026-03-26 is before the report was made "
        "final (2026-03-27)")
    case.do(cmd.PublishReport(actor=CONTACT, published_on=date(2026, 3, 27),
                              url="https://example.org/r"))
    assert case.state.stage == Stage.REPORT_PUBLISHED


def test_the_factual_accuracy_check_counts_from_the_day_the_draft_was_sent() -> None:
    case = _drafted(scheduled(opened(), date(2026, 3, 10), date(2026, 3, 12)))
    due = next_due(case.state, STANDARD)
    assert due is not None and due.deadline == DeadlineName.FACTUAL_ACCURACY_CHECK
    assert due.action == "remind"
    assert due.due_at + (due.notice_before or timedelta(0)) == (
        end_of(date(2026, 3, 13)) + timedelta(days=14))
    case.now = end_of(date(2026, 3, 27)) + timedelta(days=1)
    lapse = next_deadline(case.state, STANDARD)
    assert lapse is not None
    final = on_due(case.state, lapse, case.now, STANDARD)[1]
    # final as drafted on the first day after the fortnight for comments
    assert isinstance(final, ev.ReportMadeFinal) and final.made_final_on == date(2026, 3, 28)


def test_a_case_opened_before_business_dates_is_stored_exactly_as_it_was() -> None:
    """Replaying an old case appends byte for byte what it did: the new fields are written
    only when used, in the new schema version."""
    old = ev.CaseRequested(council=COUNCIL, kind=CPC, reason="x")
    assert old.stored_version() == 2
    assert "business_dates" not in old.payload() and "requested_on" not in old.payload()
    new = old.model_copy(update={"business_dates": True, "requested_on": date(2026, 3, 1)})
    assert new.stored_version() == 3
    assert new.payload()["requested_on"] == "2026-03-01"
    assert parse_event("CaseRequested", 2, old.payload()) == old
    assert parse_event("CaseRequested", 3, new.payload()) == new
    final = ev.ReportMadeFinal(report_version=1, document_sha256=document("f"),
                               factual_accuracy_check="no_comments")
    assert final.stored_version() == 1 and "made_final_on" not in final.payload()
    assert parse_event("ReportMadeFinal", 1, final.payload()) == final


def test_a_publication_address_must_be_https() -> None:
    case = _drafted(scheduled(opened(), date(2026, 3, 10), date(2026, 3, 12)))
    case.wait(timedelta(days=20))
    case.do(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")))
    assert case.refused(cmd.PublishReport(
        actor=CONTACT, published_on=case.today, url="http://example.org/r")) == (
        "the address 'http://example.org/r' must start with https://: the public register "
        "links to it")
