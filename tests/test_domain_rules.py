"""The rules of the journey, without a workflow or a store: `decide`, then `apply` and `fold`.

Each test drives one case through `Case`, which stamps the events the rules return as the
workflow would (deterministic event ids, versions 1, 2, 3 …, increasing times) and checks
after every step that the fold of the history is the state and that it breaks no invariant.
Refusals are asserted on the words a case officer reads.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from domain import commands as cmd
from domain import events as ev
from domain.deadlines import DeadlinePolicy, DeadlineRules, next_due, on_due
from domain.invariants import violations
from domain.recorded import Recorded
from domain.rules import MAX_VISIT_DAYS, CommandRefused, decide
from domain.state import STAGE_AFTER_EVENT, CaseState, apply, fold
from domain.vocabulary import CaseKind, DeadlineName, Stage, VisitMode

CASE_ID = "cpc-E06000001-2026"
COUNCIL = "E06000001"
OFFICER = "officer:siân.jones"
CONTACT = f"council:{COUNCIL}"
AUDITOR = "auditor:ada.lovelace"
ENGINE = "system:escalation"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NAMESPACE = uuid.UUID("0b7c3f1e-4d2a-4c55-9e61-5a0d6f3b8c21")
CPC = CaseKind.CORPORATE_PEER_CHALLENGE

ONLY_LGA_STAFF = "only a case officer or an LGA principal adviser may"


def document(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event_id(case_id: str, version: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{case_id}/{version}"))


LEAD_MEMBER = ev.PeerPlace(peer_id="p-lead-member", name="Cllr Amina Shah", role="lead_member",
                           home_council="E09000008")
LEAD_OFFICER = ev.PeerPlace(peer_id="p-lead-officer", name="Dr Tom Reyes", role="lead_officer",
                            home_council="E08000025")
OFFICER_PEER = ev.PeerPlace(peer_id="p-officer", name="Jo Pike", role="officer",
                            home_council="E06000047")
MEMBER_PEER = ev.PeerPlace(peer_id="p-member", name="Cllr Eve Lund", role="member",
                           home_council="E07000223")
MANAGER = ev.PeerPlace(peer_id="p-manager", name="Sam Ode", role="challenge_manager")
HOME_PEER = ev.PeerPlace(peer_id="p-home", name="Pat Local", role="officer",
                         home_council=COUNCIL)
SPARE_OFFICER = ev.PeerPlace(peer_id="p-spare", name="Lee Moss", role="officer",
                             home_council="E10000014")
TEAM = [LEAD_MEMBER, LEAD_OFFICER, OFFICER_PEER, MEMBER_PEER, MANAGER]

SHORT = DeadlinePolicy(default=DeadlineRules(
    factual_accuracy_check=timedelta(days=3), report_publication=timedelta(days=20),
    action_plan_publication=timedelta(days=40), progress_review=timedelta(days=60),
    progress_review_publication=timedelta(days=80), escalation_interval=timedelta(days=4)))
"""Deadlines in days rather than months, so a test reaches a lapse in a few steps."""


@dataclass
class Case:
    """One case driven through the rules, its history stamped as the workflow would."""

    case_id: str = CASE_ID
    now: datetime = T0
    history: list[Recorded] = field(default_factory=list)
    state: CaseState = field(init=False)

    def __post_init__(self) -> None:
        self.state = CaseState(case_id=self.case_id)

    @property
    def today(self) -> date:
        return self.now.date()

    def wait(self, delta: timedelta) -> None:
        self.now += delta

    def record(self, actor: str, events: Sequence[ev.Event]) -> None:
        for event in events:
            version = self.state.version + 1
            recorded = Recorded(case_id=self.case_id, version=version,
                                event_id=event_id(self.case_id, version),
                                occurred_at=self.now, actor=actor, event=event)
            self.state = apply(self.state, recorded)
            self.history.append(recorded)
        assert violations(self.state) == []
        assert fold(self.case_id, self.history) == self.state

    def do(self, command: cmd.Command, *, after: timedelta = timedelta(hours=1)) -> list[ev.Event]:
        """Accept `command` `after` the last step and record its events."""
        self.wait(after)
        events = decide(self.state, command, self.now)
        self.record(command.actor, events)
        return events

    def refused(self, command: cmd.Command) -> str:
        """The officer-facing reason `command` is refused; the case is left as it was."""
        self.wait(timedelta(minutes=5))
        before = self.state.model_dump()
        with pytest.raises(CommandRefused) as refusal:
            decide(self.state, command, self.now)
        assert self.state.model_dump() == before
        assert fold(self.case_id, self.history) == self.state
        where = self.state.stage.label if self.state.stage else "not started"
        assert str(refusal.value) == f"case {self.case_id} ({where}): {refusal.value.reason}"
        return refusal.value.reason

    def lapse_until(self, deadline: DeadlineName, level: int) -> None:
        """Let time pass until `deadline` has lapsed and climbed to `level`."""
        for _ in range(10):
            current = self.state.escalation_for(deadline)
            if current is not None and current.level == level:
                return
            due = next_due(self.state, SHORT)
            assert due is not None
            self.now = max(self.now, due.due_at)
            self.record(ENGINE, on_due(self.state, due))
        raise AssertionError(f"{deadline} did not reach level {level}")


# --- getting a case to a stage ---------------------------------------------------------------

def requested(kind: CaseKind = CPC) -> Case:
    case = Case()
    case.do(cmd.RequestCase(actor=OFFICER, case_id=CASE_ID, council=COUNCIL, kind=kind,
                            reason="Budget gap of £4.2m \"flagged\" by the s151 officer\n",
                            scope=["finance", "governance"], budget_gap_pence=420_000_000),
            after=timedelta(0))
    return case


def scoped(kind: CaseKind = CPC) -> Case:
    case = requested(kind)
    case.do(cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                          visit_mode=VisitMode.ON_SITE))
    return case


def peers_selected() -> Case:
    case = scoped()
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM, rationale=["fewest days served"]))
    case.do(cmd.ConfirmPeerTeam(actor=OFFICER))
    return case


def visit_scheduled() -> Case:
    case = peers_selected()
    case.do(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                              starts_on=case.today + timedelta(days=30),
                              ends_on=case.today + timedelta(days=33)))
    return case


def visited() -> Case:
    case = visit_scheduled()
    case.wait(timedelta(days=34))
    assert case.state.visit_starts_on is not None and case.state.visit_ends_on is not None
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=case.state.visit_starts_on,
                            ended_on=case.state.visit_ends_on))
    case.do(cmd.GiveFeedback(actor=OFFICER, given_on=case.today,
                             summary="Strong leadership; the financial plan needs work."))
    return case


def report_drafted() -> Case:
    case = visited()
    case.do(cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                            sent_on=case.today + timedelta(days=14)), after=timedelta(days=14))
    return case


def report_final() -> Case:
    case = report_drafted()
    case.do(cmd.SubmitFactualAccuracyComments(actor=CONTACT,
                                              comments="Paragraph 4: reserves are £12m."))
    case.do(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")))
    return case


def report_published() -> Case:
    case = report_final()
    case.do(cmd.PublishReport(actor=CONTACT, published_on=case.today + timedelta(days=7),
                              url="https://example.org/report"), after=timedelta(days=7))
    return case


def withdrawn() -> Case:
    case = report_drafted()
    case.do(cmd.WithdrawCase(actor=OFFICER, reason="The council entered intervention."))
    return case


def closed() -> Case:
    case = report_published()
    case.do(cmd.PublishActionPlan(actor=CONTACT, published_on=case.today,
                                  url="https://example.org/plan"))
    case.do(cmd.HoldProgressReview(actor=OFFICER, started_on=case.today, ended_on=case.today))
    case.do(cmd.PublishProgressReview(actor=CONTACT, published_on=case.today,
                                      url="https://example.org/review"))
    case.do(cmd.CloseCase(actor=OFFICER))
    return case


def test_the_stage_table_agrees_with_the_folds() -> None:
    """What the events table alone says of a case's stage (the metrics read it so) is what
    folding its events says, event by event, to closed and to withdrawn."""
    for case in (closed(), withdrawn()):
        state = CaseState(case_id=case.case_id)
        for recorded in case.history:
            before = state.stage
            state = apply(state, recorded)
            expected = STAGE_AFTER_EVENT.get(recorded.event.type_name(), before)
            assert state.stage == expected, recorded.event.type_name()


# --- the happy path -------------------------------------------------------------------------

def test_a_corporate_peer_challenge_from_request_to_close() -> None:
    case = Case()
    steps: list[tuple[cmd.Command, timedelta, Stage, list[type[ev.Event]]]] = []

    def step(command: cmd.Command, after: timedelta, stage: Stage,
             *types: type[ev.Event]) -> None:
        steps.append((command, after, stage, list(types)))
        events = case.do(command, after=after)
        assert [type(e) for e in events] == list(types)
        assert case.state.stage == stage

    step(cmd.RequestCase(actor=OFFICER, case_id=CASE_ID, council=COUNCIL, kind=CPC,
                         reason="Budget gap flagged by the s151 officer", scope=["finance"],
                         budget_gap_pence=420_000_000),
         timedelta(0), Stage.REQUESTED, ev.CaseRequested)
    assert (case.state.council, case.state.kind, case.state.requested_at) == (COUNCIL, CPC, T0)
    step(cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                       visit_mode=VisitMode.ON_SITE),
         timedelta(days=2), Stage.SCOPED, ev.CaseScoped)
    step(cmd.ProposePeerTeam(actor=OFFICER, team=[*TEAM[:2], SPARE_OFFICER, *TEAM[3:]]),
         timedelta(days=5), Stage.SCOPED, ev.PeerTeamProposed)
    step(cmd.ObjectToPeer(actor=CONTACT, peer_id="p-spare", reason="Worked here until 2024."),
         timedelta(days=1), Stage.SCOPED, ev.PeerObjectedTo)
    step(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM), timedelta(days=1), Stage.SCOPED,
         ev.PeerTeamProposed)
    step(cmd.ConfirmPeerTeam(actor=OFFICER), timedelta(hours=2), Stage.PEERS_SELECTED,
         ev.PeerTeamConfirmed)
    assert case.state.team == tuple(TEAM) and case.state.proposed_team == ()
    assert [(o.peer_id, o.actor) for o in case.state.objections] == [("p-spare", CONTACT)]
    step(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                           starts_on=date(2026, 6, 8), ends_on=date(2026, 6, 11)),
         timedelta(days=1), Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    step(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.REMOTE,
                           starts_on=date(2026, 6, 15), ends_on=date(2026, 6, 18)),
         timedelta(days=1), Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    case.now = datetime(2026, 6, 18, 17, 0, tzinfo=UTC)
    step(cmd.RecordVisit(actor=OFFICER, started_on=date(2026, 6, 15), ended_on=date(2026, 6, 18)),
         timedelta(0), Stage.VISITED, ev.VisitHeld)
    assert case.state.visit_mode == VisitMode.REMOTE
    assert case.state.visit_recorded_at == case.now
    step(cmd.GiveFeedback(actor=OFFICER, given_on=date(2026, 6, 18), summary="Well led."),
         timedelta(minutes=30), Stage.VISITED, ev.FeedbackGiven)
    step(cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                         sent_on=date(2026, 7, 9)),
         timedelta(days=21), Stage.REPORT_DRAFTED, ev.ReportDrafted)
    step(cmd.SubmitFactualAccuracyComments(actor=CONTACT, comments="Reserves are £12m."),
         timedelta(days=5), Stage.REPORT_DRAFTED, ev.FactualAccuracyCommentsReceived)
    step(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")),
         timedelta(days=5), Stage.REPORT_FINAL, ev.ReportMadeFinal)
    made_final = case.history[-1].event
    assert isinstance(made_final, ev.ReportMadeFinal)
    assert made_final.factual_accuracy_check == "comments_considered"
    step(cmd.PublishReport(actor=CONTACT, published_on=date(2026, 8, 10),
                           url="https://example.org/report"),
         timedelta(days=22), Stage.REPORT_PUBLISHED, ev.ReportPublished)
    step(cmd.PublishActionPlan(actor=CONTACT, published_on=date(2026, 10, 1),
                               url="https://example.org/plan"),
         timedelta(days=52), Stage.ACTION_PLAN_PUBLISHED, ev.ActionPlanPublished)
    case.now = datetime(2027, 4, 16, 12, 0, tzinfo=UTC)
    step(cmd.HoldProgressReview(actor=OFFICER, started_on=date(2027, 4, 15),
                                ended_on=date(2027, 4, 16)),
         timedelta(0), Stage.PROGRESS_REVIEW_HELD, ev.ProgressReviewHeld)
    step(cmd.PublishProgressReview(actor=CONTACT, published_on=date(2027, 6, 1),
                                   url="https://example.org/review"),
         timedelta(days=50), Stage.PROGRESS_REVIEW_PUBLISHED, ev.ProgressReviewPublished)
    step(cmd.CloseCase(actor=OFFICER, summary="Action plan delivered."),
         timedelta(days=1), Stage.CLOSED, ev.CaseClosed)

    state = case.state
    assert state.version == len(case.history) == len(steps)
    assert [r.version for r in case.history] == list(range(1, len(steps) + 1))
    times = [r.occurred_at for r in case.history]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len({r.event_id for r in case.history}) == len(case.history)
    assert case.history[0].event_id == str(uuid.uuid5(NAMESPACE, f"{CASE_ID}/1"))
    assert [(r.report_version, r.status) for r in state.reports] == [(1, "final")]
    assert (state.visit_held_from, state.visit_held_to) == (date(2026, 6, 15), date(2026, 6, 18))
    assert state.report_published_on == date(2026, 8, 10)
    assert state.action_plan_published_on == date(2026, 10, 1)
    assert state.progress_review_held_on == date(2027, 4, 16)
    assert state.progress_review_published_on == date(2027, 6, 1)
    assert (state.escalations, state.escalations_raised, state.missed_deadlines) == ((), 0, ())
    assert not state.is_open
    assert fold(CASE_ID, case.history) == state
    assert fold(CASE_ID, case.history[:3]).stage == Stage.SCOPED


def test_a_case_of_another_kind_needs_no_lead_peers() -> None:
    case = scoped(CaseKind.FINANCE)
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=[OFFICER_PEER]))
    case.do(cmd.ConfirmPeerTeam(actor=OFFICER))
    assert case.state.stage == Stage.PEERS_SELECTED


def test_a_draft_nobody_comments_on_is_made_final_with_no_comments() -> None:
    case = report_drafted()
    [event] = case.do(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("draft")))
    assert isinstance(event, ev.ReportMadeFinal)
    assert (event.report_version, event.factual_accuracy_check) == (1, "no_comments")


# --- refusals a user meets --------------------------------------------------------------------

def test_publishing_a_draft_report_is_refused() -> None:
    case = report_drafted()
    reason = case.refused(cmd.PublishReport(actor=CONTACT, published_on=case.today,
                                            url="https://example.org/report"))
    assert reason == "cannot publish: the report is still a draft; make it final"


def test_an_action_meant_for_another_case_is_refused() -> None:
    """A council's slot may hold a newer case than the one an officer names: the action is
    refused naming the case it was meant for, and the named case's own actions still land."""
    case = requested()
    reason = case.refused(cmd.ScopeCase(actor=OFFICER, case_id="cpc-E06000001-2025",
                                        scope=["finance"], visit_mode=VisitMode.REMOTE))
    assert reason == "this action is for case cpc-E06000001-2025, not this one"
    case.do(cmd.ScopeCase(actor=OFFICER, case_id=CASE_ID, scope=["finance"],
                          visit_mode=VisitMode.REMOTE))
    assert case.state.stage == Stage.SCOPED


def test_finalising_twice_says_it_is_final_and_to_issue_a_correction() -> None:
    case = report_final()
    reason = case.refused(cmd.FinaliseReport(actor=OFFICER, document_sha256=document("again")))
    assert reason == ("cannot make final: report version 1 is already final and cannot be "
                      "changed; issue a correction with a reason")
    published = report_published()
    assert "already final" in published.refused(
        cmd.FinaliseReport(actor=OFFICER, document_sha256=document("again")))


def test_a_council_cannot_propose_or_confirm_its_peers() -> None:
    case = scoped()
    assert case.refused(cmd.ProposePeerTeam(actor=CONTACT, team=TEAM)) == (
        f"cannot propose a peer team: {ONLY_LGA_STAFF}, not {CONTACT}")
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM))
    assert case.refused(cmd.ConfirmPeerTeam(actor=CONTACT)) == (
        f"cannot confirm the peer team: {ONLY_LGA_STAFF}, not {CONTACT}")
    assert case.refused(cmd.ConfirmPeerTeam(actor=AUDITOR)) == (
        f"cannot confirm the peer team: {ONLY_LGA_STAFF}, not {AUDITOR}")


def test_a_peer_from_the_subject_council_is_refused() -> None:
    case = scoped()
    reason = case.refused(cmd.ProposePeerTeam(actor=OFFICER, team=[*TEAM, HOME_PEER]))
    assert reason == ("cannot propose peer p-home: peers must come from other councils, and "
                      f"Pat Local is from {COUNCIL}")


def test_the_same_peer_twice_is_refused() -> None:
    case = scoped()
    reason = case.refused(cmd.ProposePeerTeam(actor=OFFICER, team=[*TEAM, OFFICER_PEER]))
    assert reason == "cannot propose: peer p-officer appears twice"


def test_confirming_a_team_with_an_objected_to_peer_is_refused() -> None:
    case = scoped()
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM))
    case.do(cmd.ObjectToPeer(actor=CONTACT, peer_id="p-officer",
                             reason="A former employee of the council."))
    assert case.refused(cmd.ConfirmPeerTeam(actor=OFFICER)) == (
        "cannot confirm: the council objected to peer p-officer; propose a team without them")
    assert case.refused(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM)) == (
        "cannot propose peer p-officer: the council objected to them; choose someone else")
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=[LEAD_MEMBER, LEAD_OFFICER, SPARE_OFFICER]))
    case.do(cmd.ConfirmPeerTeam(actor=OFFICER))
    assert "p-officer" not in {p.peer_id for p in case.state.team}


def test_another_council_speaks_for_nothing_on_this_case() -> None:
    other = "council:E09000008"
    case = scoped()
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM))
    assert case.refused(cmd.ObjectToPeer(actor=other, peer_id="p-officer", reason="x")) == (
        f"cannot object to a peer: {other} is not the council of this case ({CONTACT})")
    case = report_drafted()
    assert case.refused(cmd.SubmitFactualAccuracyComments(actor=other, comments="x")).startswith(
        f"cannot submit factual-accuracy comments: {other} is not the council of this case")
    case = report_final()
    assert "is not the council of this case" in case.refused(cmd.PublishReport(
        actor=other, published_on=case.today, url="https://example.org/r"))


def test_objections_come_from_the_council_about_a_proposed_peer() -> None:
    case = scoped()
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM))
    assert case.refused(cmd.ObjectToPeer(actor=OFFICER, peer_id="p-officer", reason="x")) == (
        f"cannot object to a peer: only the council may, not {OFFICER}")
    assert case.refused(cmd.ObjectToPeer(actor=CONTACT, peer_id="p-nobody", reason="x")) == (
        "cannot object to peer p-nobody: they are not on the proposed team")


def test_confirming_needs_a_proposal_and_for_a_corporate_challenge_both_leads() -> None:
    case = scoped()
    assert case.refused(cmd.ConfirmPeerTeam(actor=OFFICER)) == (
        "cannot confirm: no peer team has been proposed yet")
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=[LEAD_OFFICER, OFFICER_PEER]))
    assert case.refused(cmd.ConfirmPeerTeam(actor=OFFICER)) == (
        "cannot confirm: a corporate peer challenge needs a lead member peer")
    case.do(cmd.ProposePeerTeam(actor=OFFICER, team=[LEAD_MEMBER, OFFICER_PEER]))
    assert case.refused(cmd.ConfirmPeerTeam(actor=OFFICER)) == (
        "cannot confirm: a corporate peer challenge needs a lead officer peer")


def test_steps_out_of_order_name_the_stage_needed() -> None:
    case = requested()
    assert case.refused(cmd.ProposePeerTeam(actor=OFFICER, team=TEAM)) == (
        "cannot propose a peer team: the case must be scoped; scope it first")
    assert case.refused(cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=case.today, ends_on=case.today)) == (
        "cannot schedule the visit: the case must be peers selected or visit scheduled; "
        "confirm the peer team first")
    assert case.refused(cmd.CloseCase(actor=OFFICER)) == (
        "cannot close the case: the case must be progress review published; a case closes "
        "once its progress review report is published")


def test_a_visit_ending_before_it_starts_is_refused() -> None:
    case = visit_scheduled()
    start = case.today + timedelta(days=10)
    assert case.refused(cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=start,
        ends_on=start - timedelta(days=1))) == (
        f"cannot schedule the visit: it ends ({start - timedelta(days=1)}) before it starts "
        f"({start})")
    case.wait(timedelta(days=40))
    held = case.today - timedelta(days=2)
    assert case.refused(cmd.RecordVisit(actor=OFFICER, started_on=held,
                                        ended_on=held - timedelta(days=1))) == (
        f"cannot record the visit: it ends ({held - timedelta(days=1)}) before it starts "
        f"({held})")


def test_a_held_visit_cannot_be_dated_in_the_future() -> None:
    case = visit_scheduled()
    today = case.today
    tomorrow = today + timedelta(days=1)
    assert case.refused(cmd.RecordVisit(actor=OFFICER, started_on=today,
                                        ended_on=tomorrow)) == (
        f"cannot record the visit: {tomorrow} is in the future (today is {case.today})")
    assert case.refused(cmd.RecordVisit(
        actor=OFFICER, started_on=date(2024, 1, 1), ended_on=date(2024, 1, 2))) == (
        "cannot record the visit: 2024-01-01 is before the case was requested (2026-03-02)")


def test_feedback_reports_and_publication_cannot_be_dated_in_the_future() -> None:
    case = visited()
    assert case.state.feedback_given_on is not None
    assert case.refused(cmd.GiveFeedback(actor=OFFICER, given_on=case.today,
                                         summary="Again")) == (
        f"feedback was already given on {case.state.feedback_given_on}")
    later = case.today + timedelta(days=3)
    assert case.refused(cmd.DraftReport(actor=OFFICER, document_sha256=document("d"),
                                        sent_on=later)).endswith(
        f"{later} is in the future (today is {case.today})")
    case = report_final()
    assert case.refused(cmd.PublishReport(
        actor=CONTACT, published_on=case.today + timedelta(days=1),
        url="https://example.org/r")).startswith("cannot record the report's publication: ")


def test_publication_dates_follow_the_journey() -> None:
    case = report_final()
    assert case.state.draft_sent_on is not None
    before_draft = case.state.draft_sent_on - timedelta(days=1)
    assert case.refused(cmd.PublishReport(actor=CONTACT, published_on=before_draft,
                                          url="https://example.org/r")) == (
        f"cannot record the report's publication: {before_draft} is before the draft was "
        f"sent ({case.state.draft_sent_on})")
    case = report_published()
    assert case.state.report_published_on is not None
    case.wait(timedelta(days=10))
    before_report = case.state.report_published_on - timedelta(days=1)
    assert case.refused(cmd.PublishActionPlan(actor=CONTACT, published_on=before_report,
                                              url="https://example.org/plan")) == (
        f"cannot record the action plan: {before_report} is before the report was "
        f"published ({case.state.report_published_on})")
    case.do(cmd.PublishActionPlan(actor=CONTACT, published_on=case.state.report_published_on,
                                  url="https://example.org/plan"))


def test_scheduling_a_visit_in_the_past_too_far_ahead_or_too_long_is_refused() -> None:
    case = peers_selected()
    yesterday = case.today - timedelta(days=1)
    assert case.refused(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                          starts_on=yesterday, ends_on=case.today)) == (
        f"cannot schedule the visit: {yesterday} is before {case.today}")
    far = case.today + timedelta(days=800)
    assert "is after" in case.refused(cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=far, ends_on=far))
    start = case.today + timedelta(days=7)
    assert case.refused(cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=start,
        ends_on=start + timedelta(days=MAX_VISIT_DAYS))) == (
        f"cannot schedule a visit longer than {MAX_VISIT_DAYS} days")


def test_the_draft_waits_for_feedback_and_comments_come_from_the_council_on_the_draft() -> None:
    case = visit_scheduled()
    case.wait(timedelta(days=40))
    assert case.state.visit_starts_on is not None and case.state.visit_ends_on is not None
    case.do(cmd.RecordVisit(actor=OFFICER, started_on=case.state.visit_starts_on,
                            ended_on=case.state.visit_ends_on))
    assert case.refused(cmd.DraftReport(actor=OFFICER, document_sha256=document("d"),
                                        sent_on=case.today)) == (
        "cannot send the draft report: record the feedback first")
    case = report_drafted()
    assert case.refused(cmd.SubmitFactualAccuracyComments(actor=OFFICER, comments="x")) == (
        f"cannot submit factual-accuracy comments: only the council may, not {OFFICER}")
    case = report_final()
    assert case.refused(cmd.SubmitFactualAccuracyComments(actor=CONTACT, comments="x")) == (
        "cannot submit factual-accuracy comments: the case must be report drafted; "
        "comments are taken on the draft only")


def test_an_auditor_records_nothing() -> None:
    case = report_final()
    assert case.refused(cmd.PublishReport(actor=AUDITOR, published_on=case.today,
                                          url="https://example.org/r")) == (
        "cannot record the report's publication: only a case officer, an LGA principal adviser "
        "or the council may, "
        f"not {AUDITOR}")
    assert case.refused(cmd.WithdrawCase(actor=AUDITOR, reason="x")) == (
        f"cannot withdraw the case: {ONLY_LGA_STAFF}, not {AUDITOR}")
    assert case.refused(cmd.WithdrawCase(actor=CONTACT, reason="x")) == (
        f"cannot withdraw the case: {ONLY_LGA_STAFF}, not {CONTACT}")


@pytest.mark.parametrize("ended", [withdrawn, closed], ids=["withdrawn", "closed"])
def test_nothing_more_is_recorded_on_a_withdrawn_or_closed_case(
        ended: Callable[[], Case]) -> None:
    case = ended()
    label = case.state.stage.label if case.state.stage else ""
    today = case.today
    for command in (
        cmd.ScopeCase(actor=OFFICER, scope=["finance"], visit_mode=VisitMode.ON_SITE),
        cmd.SubmitFactualAccuracyComments(actor=CONTACT, comments="Late comments"),
        cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")),
        cmd.CorrectReport(actor=OFFICER, document_sha256=document("fix"), reason="typo"),
        cmd.PublishReport(actor=CONTACT, published_on=today, url="https://example.org/r"),
        cmd.PublishProgressReview(actor=CONTACT, published_on=today, url="https://example.org/p"),
        cmd.WithdrawCase(actor=OFFICER, reason="Again"),
        cmd.CloseCase(actor=OFFICER),
    ):
        assert case.refused(command) == (
            f"the case is {label}; nothing more can be recorded on it")
    assert case.refused(cmd.RequestCase(actor=OFFICER, case_id=CASE_ID, council=COUNCIL,
                                        kind=CPC, reason="Again")) == (
        "this case already exists; choose another case id")


def test_a_case_is_requested_once_by_an_officer_under_its_own_id() -> None:
    case = Case()
    assert case.refused(cmd.ScopeCase(actor=OFFICER, scope=["finance"],
                                      visit_mode=VisitMode.ON_SITE)) == (
        "no such case has been requested; start it first")
    assert case.refused(cmd.RequestCase(actor=CONTACT, case_id=CASE_ID, council=COUNCIL,
                                        kind=CPC, reason="We choose")) == (
        f"cannot request a case: {ONLY_LGA_STAFF}, not {CONTACT}")
    assert case.refused(cmd.RequestCase(actor=OFFICER, case_id="another", council=COUNCIL,
                                        kind=CPC, reason="Wrong case")) == (
        "the command is for case another, not this one")
    checkpoints = Case(case_id="checkpoints")
    assert checkpoints.refused(cmd.RequestCase(actor=OFFICER, case_id="checkpoints",
                                               council=COUNCIL, kind=CPC, reason="x")) == (
        "'checkpoints' names the checkpoint stream")
    case = requested()
    assert case.refused(cmd.RequestCase(actor=OFFICER, case_id=CASE_ID, council=COUNCIL,
                                        kind=CPC, reason="Again")) == (
        "this case already exists; choose another case id")


# --- escalation and compliance ----------------------------------------------------------------

def test_compliance_with_an_escalated_deadline_resolves_the_escalation() -> None:
    case = report_final()
    case.lapse_until(DeadlineName.REPORT_PUBLICATION, level=2)
    assert case.state.missed_deadlines == (DeadlineName.REPORT_PUBLICATION,)
    assert case.state.escalations_raised == 1
    events = case.do(cmd.PublishReport(actor=CONTACT, published_on=case.today,
                                       url="https://example.org/report"))
    assert events[0] == ev.ReportPublished(report_version=1, published_on=case.today,
                                           url="https://example.org/report")
    assert events[1:] == [ev.EscalationResolved(deadline=DeadlineName.REPORT_PUBLICATION,
                                                level=2)]
    assert case.state.escalations == ()
    assert (case.state.escalations_raised, case.state.escalations_resolved) == (1, 1)

    case.lapse_until(DeadlineName.ACTION_PLAN_PUBLICATION, level=3)
    events = case.do(cmd.PublishActionPlan(actor=CONTACT, published_on=case.today,
                                           url="https://example.org/plan"))
    assert isinstance(events[0], ev.ActionPlanPublished) and len(events) == 2
    assert events[1] == ev.EscalationResolved(deadline=DeadlineName.ACTION_PLAN_PUBLICATION,
                                              level=3)
    assert (case.state.escalations_raised, case.state.escalations_resolved) == (2, 2)


def test_compliance_on_time_resolves_nothing() -> None:
    case = report_final()
    events = case.do(cmd.PublishReport(actor=CONTACT, published_on=case.today,
                                       url="https://example.org/report"))
    assert [type(e) for e in events] == [ev.ReportPublished]
    assert case.state.escalations_resolved == 0


def test_a_lapsed_factual_accuracy_check_makes_the_draft_final_without_escalating() -> None:
    case = report_drafted()
    due = next_due(case.state, SHORT)
    assert due is not None and due.deadline == DeadlineName.FACTUAL_ACCURACY_CHECK
    case.now = due.due_at
    case.record(ENGINE, on_due(case.state, due))
    assert case.state.stage == Stage.REPORT_FINAL
    assert case.state.final_report is not None
    assert case.state.final_report.document_sha256 == document("draft")
    assert case.state.escalations == ()


def test_withdrawing_an_escalated_case_closes_its_escalations() -> None:
    case = report_final()
    case.lapse_until(DeadlineName.REPORT_PUBLICATION, level=1)
    case.do(cmd.WithdrawCase(actor=OFFICER, reason="The council entered intervention."))
    assert case.state.stage == Stage.WITHDRAWN
    assert case.state.withdrawal_reason == "The council entered intervention."
    assert case.state.escalations == ()
    assert next_due(case.state, SHORT) is None


# --- corrections ------------------------------------------------------------------------------

def test_a_correction_is_a_new_version_and_the_old_final_stays_visible() -> None:
    case = report_final()
    [event] = case.do(cmd.CorrectReport(actor=OFFICER, document_sha256=document("corrected"),
                                        reason="A councillor's name misspelt"))
    assert event == ev.ReportCorrected(report_version=2, corrects_version=1,
                                       document_sha256=document("corrected"),
                                       reason="A councillor's name misspelt")
    reports = case.state.reports
    assert [(r.report_version, r.status, r.document_sha256, r.correction_reason)
            for r in reports] == [
        (1, "final", document("final"), None),
        (2, "final", document("corrected"), "A councillor's name misspelt"),
    ]
    assert (case.state.final_report, case.state.stage) == (reports[1], Stage.REPORT_FINAL)

    [published] = case.do(cmd.PublishReport(actor=CONTACT, published_on=case.today,
                                            url="https://example.org/report"))
    assert isinstance(published, ev.ReportPublished) and published.report_version == 2

    case.do(cmd.CorrectReport(actor=OFFICER, document_sha256=document("corrected again"),
                              reason="A figure in table 2"))
    assert [(r.report_version, r.status) for r in case.state.reports] == [
        (1, "final"), (2, "final"), (3, "final")]
    assert case.state.reports[:2] == reports
    assert case.state.stage == Stage.REPORT_PUBLISHED


def test_a_correction_needs_a_final_report_an_officer_and_a_changed_document() -> None:
    case = report_drafted()
    assert case.refused(cmd.CorrectReport(actor=OFFICER, document_sha256=document("x"),
                                          reason="typo")) == (
        "cannot correct: the report is not final yet; revise the draft instead")
    case = report_final()
    assert case.refused(cmd.CorrectReport(actor=CONTACT, document_sha256=document("x"),
                                          reason="We prefer this")) == (
        f"cannot correct the report: {ONLY_LGA_STAFF}, not {CONTACT}")
    assert case.refused(cmd.CorrectReport(actor=OFFICER, document_sha256=document("final"),
                                          reason="typo")) == (
        "cannot correct: the document is identical to version 1")


# --- the fold -------------------------------------------------------------------------------

def test_the_fold_refuses_events_out_of_order_or_of_another_case() -> None:
    case = scoped()
    first, second = case.history[:2]
    with pytest.raises(ValueError, match="expected version 1, got 2"):
        fold(CASE_ID, [second])
    with pytest.raises(ValueError, match="expected version 2, got 1"):
        fold(CASE_ID, [first, first])
    with pytest.raises(ValueError, match="folded into case other"):
        fold("other", [first])


def test_the_fold_stops_where_the_history_is_cut() -> None:
    case = report_published()
    for n in range(len(case.history) + 1):
        state = fold(CASE_ID, case.history[:n])
        assert state.version == n
        assert violations(state) == []
