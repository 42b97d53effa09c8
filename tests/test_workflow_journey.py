"""The case workflow end to end: the client, the worker, the workflow and the store together.

Runs on the time-skipping test server (`case_world`): months pass with `env.sleep`, never with
real sleeps. After a skip, `Journeys.until` polls the workflow's query briefly, because the
engine's own appends (a lapse, an escalation) are recorded by the worker a moment after the
timer fires. Dates given to the domain are taken from the environment's clock, which is the
workflow's clock. Refusals are also checked on the real dev server, which (unlike the test
server) leaves no trace of a rejected update in the history at all. Every test uses councils
of its own: the servers are shared by the session, and a council holds one open case of a
kind at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from application.cases import ActionRefused, CaseClient, CaseNotFound
from application.journey import demo_team, document
from domain import commands as cmd
from domain import events as ev
from domain.deadlines import LADDER
from domain.events import PeerPlace
from domain.notifications import ESCALATION_RECIPIENTS
from domain.rules import approval_request_id
from domain.state import CaseState, fold
from domain.vocabulary import CaseKind, DeadlineName, Stage, VisitMode
from eventstore import EventStore, StoredEvent
from eventstore.deliveries import notices_for_case
from eventstore.verify import verify
from tests.conftest import CaseWorld
from tests.support import TEST_POLICIES, register_council
from worker import build_worker
from workflows import search_attributes as sa
from workflows.improvement_case import ESCALATION_ACTOR, ImprovementCase
from workflows.messages import CaseView, workflow_id_for_case

OFFICER = "officer:siân.jones"
ADVISER = "lga_adviser:raj.patel"
CPC = CaseKind.CORPORATE_PEER_CHALLENGE
WORKFLOW_TASK_EVENTS = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED}

POLICIES = ("standard", "short-hours")
"""Named policies of the tests' workers (tests/support.py, TEST_POLICIES)."""

ONLY_LGA_STAFF = "only a case officer or an LGA principal adviser may"
APPROVED = ("ApprovalRequested", "RequestApproved")
"""A sensitive action's request and its approval, recorded before the action's effect."""


def a_council() -> str:
    """A GSS-shaped code no other test (nor any real council) uses."""
    return f"E{uuid.uuid4().int % 10**8:08d}"


def contact(council: str) -> str:
    return f"council:{council}"


def url(council: str, what: str) -> str:
    return f"https://example.org/{council}/{what}"


# --- the harness ---------------------------------------------------------------------------

@dataclass
class Journeys:
    """A world to drive cases in; remembers what it opened so that none is left running."""

    world: CaseWorld
    opened: list[str] = field(default_factory=list)

    @property
    def env(self) -> WorkflowEnvironment:
        return self.world.env

    @property
    def cases(self) -> CaseClient:
        return self.world.cases

    @property
    def store(self) -> EventStore:
        return self.world.store

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def today(self) -> date:
        return (await self.now()).date()

    async def open(self, council: str, *, kind: CaseKind = CPC,
                   policy: str = "standard") -> CaseView:
        register_council(self.store, council)
        view = await self.cases.start(council=council, kind=kind, actor=OFFICER,
                                      reason="Budget gap flagged by the s151 officer",
                                      scope=["finance"], budget_gap_pence=420_000_000,
                                      deadline_policy=policy, now=await self.now())
        self.opened.append(view.state.case_id)
        return view

    def handle(self, case_id: str) -> WorkflowHandle[ImprovementCase, CaseView]:
        return self.env.client.get_workflow_handle_for(ImprovementCase.run,
                                                       workflow_id_for_case(case_id))

    async def history(self, case_id: str) -> list[HistoryEvent]:
        return list((await self.handle(case_id).fetch_history()).events)

    async def skip(self, duration: timedelta) -> None:
        assert self.env.supports_time_skipping, "only the time-skipping server skips time"
        await self.env.sleep(duration)

    async def skip_to(self, moment: datetime) -> None:
        await self.skip(moment - await self.now())

    async def until(self, case_id: str, test: Callable[[CaseView], bool],
                    what: str) -> CaseView:
        """Poll the case until `test` holds: the worker records a lapse just after its timer."""
        for _ in range(250):
            view = await self.cases.view(case_id)
            if test(view):
                return view
            await asyncio.sleep(0.02)
        raise AssertionError(f"{case_id} never reached {what}; it stands at {view.state}")

    async def leave_none_running(self) -> None:
        for case_id in self.opened:
            with contextlib.suppress(RPCError):  # already closed
                await self.handle(case_id).terminate("test over")


@pytest_asyncio.fixture
async def journeys(case_world: CaseWorld) -> AsyncIterator[Journeys]:
    driver = Journeys(case_world)
    yield driver
    await driver.leave_none_running()


@pytest_asyncio.fixture
async def dev_world(dev_server_env: WorkflowEnvironment,
                    sqlite_store: EventStore) -> AsyncIterator[CaseWorld]:
    """Like `case_world`, on the real dev server (which drops a rejected update's task)."""
    task_queue = f"cases-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_server_env.client, sqlite_store, task_queue):
        yield CaseWorld(env=dev_server_env, store=sqlite_store, task_queue=task_queue,
                        cases=CaseClient(dev_server_env.client, task_queue=task_queue,
                                         store=sqlite_store))


@pytest.fixture(params=["time-skipping", "dev-server"])
def any_world(request: pytest.FixtureRequest) -> CaseWorld:
    world: CaseWorld = request.getfixturevalue(
        "case_world" if request.param == "time-skipping" else "dev_world")
    return world


@pytest_asyncio.fixture
async def journeys_anywhere(any_world: CaseWorld) -> AsyncIterator[Journeys]:
    driver = Journeys(any_world)
    yield driver
    await driver.leave_none_running()


# --- checks --------------------------------------------------------------------------------

def types_of(stored: Sequence[StoredEvent]) -> list[str]:
    return [e.type for e in stored]


def assert_store_agrees(j: Journeys, view: CaseView) -> list[StoredEvent]:
    """The store's chain is intact, numbered 1..n, and folds to the workflow's own state."""
    case_id = view.state.case_id
    stored = j.store.read_case(case_id)
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    verdict = verify(j.store, case_id)
    assert verdict.ok, verdict.problems
    assert verdict.events == len(stored) == view.state.version
    assert fold(case_id, [e.to_recorded() for e in stored]) == view.state
    return stored


def stage_label(state: CaseState) -> str:
    assert state.stage is not None
    return state.stage.label


async def assert_refused(j: Journeys, case_id: str, command: cmd.AnyCommand,
                         message: str) -> None:
    """Refused with the domain's words; nothing recorded in the store nor in Temporal."""
    stage = stage_label((await j.cases.view(case_id)).state)
    before = await j.history(case_id)
    position = j.store.last_position()
    with pytest.raises(ActionRefused) as refused:
        await j.cases.act(case_id, command)
    assert str(refused.value) == f"case {case_id} ({stage}): {message}"
    after = await j.history(case_id)
    assert j.store.last_position() == position
    if j.env.supports_time_skipping:
        # The test server has no speculative workflow tasks: the task that ran the validator
        # stays in the history, but nothing else does (no update, no marker, no command).
        assert after[:len(before)] == before
        assert {e.event_type for e in after[len(before):]} <= WORKFLOW_TASK_EVENTS
    else:
        assert len(after) == len(before)
    assert (await j.cases.view(case_id)).state.version == j.store.head(case_id)[0]


async def approved(j: Journeys, case_id: str, command: cmd.AnyCommand, stage: Stage,
                   *records: type[ev.Event]) -> CaseView:
    """A sensitive action (BRIEF §5): recorded only as a request, the case otherwise as it
    was; then approved by an LGA adviser, when it takes effect with `records`, recorded under
    the approver's name after the approval."""
    before = (await j.cases.view(case_id)).state
    assert before.stage is not None
    asked = await act(j, case_id, command, before.stage, ev.ApprovalRequested)
    assert asked.state.model_dump(exclude={"version", "last_event_at", "awaiting_approval"}) \
        == before.model_dump(exclude={"version", "last_event_at", "awaiting_approval"})
    [waiting] = [a for a in asked.state.awaiting_approval if a.action == command.action]
    assert waiting.requested_by == command.actor
    assert waiting.request_id == approval_request_id(command.action, asked.state.version)
    view = await act(j, case_id, cmd.ApproveRequest(actor=ADVISER, request_id=waiting.request_id),
                     stage, ev.RequestApproved, *records)
    assert waiting not in view.state.awaiting_approval
    took_effect = j.store.read_case(case_id)[asked.state.version:]
    assert {e.actor for e in took_effect} == {ADVISER}
    return view


async def withdraw(cases: CaseClient, case_id: str, reason: str) -> CaseView:
    asked = await cases.act(case_id, cmd.WithdrawCase(actor=OFFICER, reason=reason))
    [waiting] = asked.state.awaiting_approval
    return await cases.act(case_id, cmd.ApproveRequest(actor=ADVISER,
                                                       request_id=waiting.request_id))


async def act(j: Journeys, case_id: str, command: cmd.AnyCommand, stage: Stage,
              *records: type[ev.Event]) -> CaseView:
    """Act, and check the answer's stage and the events the action added to the store."""
    before = j.store.head(case_id)[0]
    view = await j.cases.act(case_id, command)
    assert view.state.stage == stage, (command.action, view.state.stage)
    added = j.store.read_case(case_id)[before:]
    assert types_of(added) == [t.type_name() for t in records], command.action
    assert view.state.version == before + len(records)
    return view


async def to_visited(j: Journeys, case_id: str, council: str) -> CaseView:
    """Scope, choose the peers, hold the visit today and give feedback."""
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                                        visit_mode=VisitMode.ON_SITE),
              Stage.SCOPED, ev.CaseScoped)
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=demo_team(council)),
                   Stage.SCOPED, ev.PeerTeamProposed)
    await act(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER), Stage.PEERS_SELECTED,
              ev.PeerTeamConfirmed)
    today = await j.today()
    await act(j, case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                            starts_on=today, ends_on=today),
              Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    await act(j, case_id, cmd.RecordVisit(actor=OFFICER, started_on=today, ended_on=today),
              Stage.VISITED, ev.VisitHeld)
    return await act(j, case_id, cmd.GiveFeedback(actor=OFFICER, given_on=today,
                                                  summary="Strong leadership; plan the money."),
                     Stage.VISITED, ev.FeedbackGiven)


def at_level(level: int) -> Callable[[CaseView], bool]:
    def reached(view: CaseView) -> bool:
        return any(e.level == level for e in view.state.escalations)

    return reached


def search_attributes_of(description: WorkflowExecutionDescription) -> dict[str, object]:
    typed = description.typed_search_attributes
    return {key.name: typed.get(key) for key in sa.ALL}


# --- the whole journey ---------------------------------------------------------------------

async def test_a_corporate_peer_challenge_from_request_to_close(journeys: Journeys) -> None:
    j = journeys
    council = a_council()
    opened = await j.open(council)
    case_id = opened.state.case_id
    assert case_id == f"cpc-{council}-{(await j.now()).year}"
    assert opened.state.stage == Stage.REQUESTED and opened.state.version == 1
    assert types_of(j.store.read_case(case_id)) == ["CaseRequested"]

    team = demo_team(council)
    objected = next(p for p in team if p.role == "officer")
    replacement = PeerPlace(peer_id="p-officer-governance", name="Ade Cole", role="officer",
                            home_council="E06000047")
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                                        visit_mode=VisitMode.ON_SITE),
              Stage.SCOPED, ev.CaseScoped)
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team,
                                                   rationale=["fewest days served"]),
                   Stage.SCOPED, ev.PeerTeamProposed)
    await act(j, case_id, cmd.ObjectToPeer(actor=contact(council), peer_id=objected.peer_id,
                                           reason="Worked here until last year"),
              Stage.SCOPED, ev.PeerObjectedTo)
    second_team = [replacement if p == objected else p for p in team]
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=second_team),
                   Stage.SCOPED, ev.PeerTeamProposed)
    view = await act(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER), Stage.PEERS_SELECTED,
                     ev.PeerTeamConfirmed)
    assert list(view.state.team) == second_team
    assert [o.peer_id for o in view.state.objections] == [objected.peer_id]

    today = await j.today()
    visit_from, visit_to = today + timedelta(days=14), today + timedelta(days=16)
    await act(j, case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                            starts_on=visit_from, ends_on=visit_to),
              Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    await j.skip(timedelta(days=17))
    view = await act(j, case_id, cmd.RecordVisit(actor=OFFICER, started_on=visit_from,
                                                 ended_on=visit_to),
                     Stage.VISITED, ev.VisitHeld)
    assert view.next_deadline is not None
    assert view.next_deadline.deadline == DeadlineName.REPORT_PUBLICATION
    await act(j, case_id, cmd.GiveFeedback(actor=OFFICER, given_on=visit_to,
                                           summary="Strong leadership; the plan needs work."),
              Stage.VISITED, ev.FeedbackGiven)

    await j.skip(timedelta(days=21))
    await act(j, case_id, cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                                          sent_on=await j.today()),
              Stage.REPORT_DRAFTED, ev.ReportDrafted)
    await j.skip(timedelta(days=5))
    await act(j, case_id, cmd.SubmitFactualAccuracyComments(
        actor=contact(council), comments="Paragraph 4: reserves are £12m."),
        Stage.REPORT_DRAFTED, ev.FactualAccuracyCommentsReceived)
    await j.skip(timedelta(days=5))
    await act(j, case_id, cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")),
              Stage.REPORT_FINAL, ev.ReportMadeFinal)
    view = await approved(j, case_id, cmd.CorrectReport(
        actor=OFFICER, document_sha256=document("final, corrected"),
        reason="A councillor's name misspelt"),
                          Stage.REPORT_FINAL, ev.ReportCorrected)
    assert [(r.report_version, r.status) for r in view.state.reports] == [(1, "final"),
                                                                          (2, "final")]

    await j.skip(timedelta(days=19))
    await act(j, case_id, cmd.PublishReport(actor=contact(council), published_on=await j.today(),
                                            url=url(council, "report")),
              Stage.REPORT_PUBLISHED, ev.ReportPublished)
    await j.skip(timedelta(days=60))
    await act(j, case_id, cmd.PublishActionPlan(actor=contact(council),
                                                published_on=await j.today(),
                                                url=url(council, "action-plan")),
              Stage.ACTION_PLAN_PUBLISHED, ev.ActionPlanPublished)
    await j.skip(timedelta(days=170))
    today = await j.today()
    await act(j, case_id, cmd.HoldProgressReview(actor=OFFICER,
                                                 started_on=today - timedelta(days=1),
                                                 ended_on=today),
              Stage.PROGRESS_REVIEW_HELD, ev.ProgressReviewHeld)
    await j.skip(timedelta(days=60))
    view = await act(j, case_id, cmd.PublishProgressReview(
        actor=contact(council), published_on=await j.today(), url=url(council, "review")),
        Stage.PROGRESS_REVIEW_PUBLISHED, ev.ProgressReviewPublished)
    assert view.next_deadline is None and view.pending == []
    closed = await act(j, case_id, cmd.CloseCase(actor=OFFICER, summary="Plan delivered."),
                       Stage.CLOSED, ev.CaseClosed)

    stored = assert_store_agrees(j, closed)
    assert types_of(stored) == [
        "CaseRequested", "CaseScoped", *APPROVED, "PeerTeamProposed", "PeerObjectedTo",
        *APPROVED, "PeerTeamProposed", "PeerTeamConfirmed", "VisitScheduled", "VisitHeld",
        "FeedbackGiven", "ReportDrafted", "FactualAccuracyCommentsReceived", "ReportMadeFinal",
        *APPROVED, "ReportCorrected", "ReportPublished", "ActionPlanPublished",
        "ProgressReviewHeld", "ProgressReviewPublished", "CaseClosed"]
    assert stored[0].payload["four_eyes"] is True
    assert stored[0].payload["deadline_policy"] == "standard"
    by_type = {e.type: e for e in stored}
    assert by_type["ReportMadeFinal"].payload["factual_accuracy_check"] == "comments_considered"
    assert by_type["ReportPublished"].payload["report_version"] == 2
    assert by_type["PeerObjectedTo"].actor == contact(council)
    assert closed.state.missed_deadlines == () and closed.state.escalations_raised == 0
    assert [n.recipient for n in notices_for_case(j.store, case_id)] == [
        "council_contact"] * 3  # two proposed teams and the draft

    result = await j.handle(case_id).result()
    assert result == closed
    assert result.state == fold(case_id, [e.to_recorded() for e in stored])

    # Deadlines moved a dozen times; no timer was ever cancelled: an alarm left behind by a
    # due time that moved later rang early (during the skips above) and recorded nothing.
    kinds = [e.event_type for e in await j.history(case_id)]
    assert EventType.EVENT_TYPE_TIMER_CANCELED not in kinds
    assert kinds.count(EventType.EVENT_TYPE_TIMER_FIRED) >= 1


# --- deadlines -----------------------------------------------------------------------------

@pytest.mark.parametrize("policy_name", sorted(POLICIES))
async def test_each_deadline_lapses_and_the_ladder_climbs_to_three(journeys: Journeys,
                                                                   policy_name: str) -> None:
    j = journeys
    policy = TEST_POLICIES.resolve(policy_name)
    rules = policy.rules_for(CPC)
    margin = rules.escalation_interval / 2
    council = a_council()
    case_id = (await j.open(council, policy=policy_name)).state.case_id
    handle = j.handle(case_id)
    await to_visited(j, case_id, council)
    drafted = await act(j, case_id, cmd.DraftReport(
        actor=OFFICER, document_sha256=document("draft"), sent_on=await j.today()),
        Stage.REPORT_DRAFTED, ev.ReportDrafted)
    sent_at, visit_at = drafted.state.draft_sent_at, drafted.state.visit_recorded_at
    assert sent_at is not None and visit_at is not None

    # The council never checks the draft: it is made final as drafted, with no escalation.
    await j.skip_to(sent_at + rules.factual_accuracy_check + margin)
    view = await j.until(case_id, lambda v: v.state.stage == Stage.REPORT_FINAL,
                         "the factual-accuracy check lapsing")
    missed, final = j.store.read_case(case_id)[-2:]
    assert (missed.type, final.type) == ("DeadlineMissed", "ReportMadeFinal")
    assert missed.actor == final.actor == ESCALATION_ACTOR
    assert missed.to_recorded().event == ev.DeadlineMissed(
        deadline=DeadlineName.FACTUAL_ACCURACY_CHECK,
        due_at=sent_at + rules.factual_accuracy_check)
    due_at = sent_at + rules.factual_accuracy_check
    assert final.to_recorded().event == ev.ReportMadeFinal(
        report_version=1, document_sha256=document("draft"), factual_accuracy_check="lapsed",
        made_final_on=due_at.date())
    assert view.state.missed_deadlines == (DeadlineName.FACTUAL_ACCURACY_CHECK,)
    assert view.state.escalations == () and view.state.escalations_raised == 0

    # The council does not publish: the lapse climbs the ladder, one interval a level.
    raised_before: datetime | None = None
    await j.skip_to(visit_at + rules.report_publication + margin)
    for level in (1, 2, 3):
        if level > 1:
            await j.skip(rules.escalation_interval)
        view = await j.until(case_id, at_level(level), f"escalation level {level}")
        escalation = view.state.escalation_for(DeadlineName.REPORT_PUBLICATION)
        assert escalation is not None and escalation.level == level
        raised = j.store.read_case(case_id)[-1]
        assert raised.actor == ESCALATION_ACTOR
        assert raised.to_recorded().event == ev.EscalationRaised(
            deadline=DeadlineName.REPORT_PUBLICATION, level=level,
            recipient=LADDER[level].format(council=council))
        if level == 1:
            missed = j.store.read_case(case_id)[-2]
            assert missed.to_recorded().event == ev.DeadlineMissed(
                deadline=DeadlineName.REPORT_PUBLICATION,
                due_at=visit_at + rules.report_publication)
        else:  # when its timer fired: an interval after the level below, give or take the work
            assert raised_before is not None
            due = raised_before + rules.escalation_interval
            assert due <= raised.occurred_at < due + timedelta(minutes=1)
        raised_before = raised.occurred_at
        attributes = search_attributes_of(await handle.describe())
        assert attributes["EscalationLevel"] == level
        assert attributes["CaseStage"] == Stage.REPORT_FINAL.value

    # Level 3 is the top: another interval passes and nothing more is raised.
    assert all(d.action == "lapse" for d in view.pending)
    version = view.state.version
    await j.skip(rules.escalation_interval)
    view = await j.cases.view(case_id)
    assert view.state.version == version == j.store.head(case_id)[0]
    assert view.state.escalations_raised == 1

    # Compliance resolves the escalation and records it.
    published = await act(j, case_id, cmd.PublishReport(
        actor=contact(council), published_on=await j.today(), url=url(council, "report")),
        Stage.REPORT_PUBLISHED, ev.ReportPublished, ev.EscalationResolved)
    assert j.store.read_case(case_id)[-1].to_recorded().event == ev.EscalationResolved(
        deadline=DeadlineName.REPORT_PUBLICATION, level=3)
    assert published.state.escalations == ()
    assert (published.state.escalations_raised, published.state.escalations_resolved) == (1, 1)
    attributes = search_attributes_of(await handle.describe())
    assert attributes["EscalationLevel"] == 0
    assert attributes["CaseStage"] == Stage.REPORT_PUBLISHED.value

    stored = assert_store_agrees(j, published)
    assert types_of(stored) == [
        "CaseRequested", "CaseScoped", *APPROVED, "PeerTeamProposed", "PeerTeamConfirmed",
        "VisitScheduled", "VisitHeld", "FeedbackGiven", "ReportDrafted", "DeadlineMissed",
        "ReportMadeFinal", "DeadlineMissed", "EscalationRaised", "EscalationRaised",
        "EscalationRaised", "ReportPublished", "EscalationResolved"]

    # One notification per lapse, per step up the ladder and per resolution, to the ladder.
    outbox: dict[str, list[str]] = {}
    for notification in notices_for_case(j.store, case_id):
        outbox.setdefault(notification.event_id, []).append(notification.recipient)
    expected: dict[str, list[str]] = {}
    for stored_event in stored:
        event = stored_event.to_recorded().event
        if isinstance(event, ev.EscalationRaised):
            expected[stored_event.event_id] = [ESCALATION_RECIPIENTS[event.level].value]
        elif isinstance(event, ev.DeadlineMissed):
            expected[stored_event.event_id] = ["council_contact", "principal_adviser"]
        elif isinstance(event, ev.EscalationResolved):
            expected[stored_event.event_id] = ["principal_adviser"]
    assert len(expected) == 6
    assert {k: v for k, v in outbox.items() if k in expected} == expected

    withdrawn = await approved(j, case_id, cmd.WithdrawCase(actor=OFFICER, reason="Test over."),
                               Stage.WITHDRAWN, ev.CaseWithdrawn)
    assert await handle.result() == withdrawn


# --- withdrawal, refusals, duplicates ------------------------------------------------------

async def test_withdrawal_mid_journey_closes_the_case_and_refuses_what_follows(
        journeys: Journeys) -> None:
    j = journeys
    council = a_council()
    case_id = (await j.open(council)).state.case_id
    visited = await to_visited(j, case_id, council)
    assert visited.pending  # deadlines were running

    reason = "The council entered statutory intervention instead."
    withdrawn = await approved(j, case_id, cmd.WithdrawCase(actor=OFFICER, reason=reason),
                               Stage.WITHDRAWN, ev.CaseWithdrawn)
    assert withdrawn.state.withdrawal_reason == reason
    assert withdrawn.pending == [] and withdrawn.next_deadline is None
    assert await j.handle(case_id).result() == withdrawn

    position = j.store.last_position()
    await j.skip(timedelta(days=120))  # its deadlines would have lapsed by now; nothing fires
    with pytest.raises(ActionRefused) as refused:
        await j.cases.act(case_id, cmd.DraftReport(actor=OFFICER, document_sha256=document("d"),
                                                   sent_on=await j.today()))
    assert str(refused.value) == (f"case {case_id} (withdrawn): the case is withdrawn; "
                                  "nothing more can be recorded on it")
    assert j.store.last_position() == position
    assert types_of(assert_store_agrees(j, withdrawn))[-1] == "CaseWithdrawn"


async def test_a_sensitive_action_takes_effect_only_when_a_second_person_approves(
        journeys: Journeys) -> None:
    """The four-eyes rule on a running case (every case the workflow opens has it): a
    hand-picked team is recorded as a request and proposes nobody; its requester cannot
    approve it, not even under another role, nor can the council; a second request waits
    behind the first; a declined request never takes effect; an approved one does, and
    either LGA role may approve the other's."""
    j = journeys
    council = a_council()
    opened = await j.open(council)
    assert opened.state.four_eyes and opened.state.deadline_policy == "standard"
    case_id = opened.state.case_id
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance"],
                                        visit_mode=VisitMode.ON_SITE), Stage.SCOPED,
              ev.CaseScoped)
    team = demo_team(council)
    await assert_refused(j, case_id, cmd.CorrectReport(actor=OFFICER, reason="Typo",
                                                       document_sha256=document("v2")),
                         "cannot correct: the report is not final yet; revise the draft instead")
    asked = await act(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team), Stage.SCOPED,
                      ev.ApprovalRequested)
    [waiting] = asked.state.awaiting_approval
    request_id = waiting.request_id
    assert request_id == "propose-team-3" and asked.state.proposed_team == ()
    assert [n.subject for n in notices_for_case(j.store, case_id)] == []  # none told yet

    own = (f"cannot approve {request_id}: it is your own request; the four-eyes rule needs "
           "another case officer or an LGA principal adviser")
    await assert_refused(j, case_id, cmd.ApproveRequest(actor=OFFICER, request_id=request_id),
                         own)
    await assert_refused(j, case_id, cmd.ApproveRequest(actor="lga_adviser:siân.jones",
                                                        request_id=request_id), own)
    await assert_refused(j, case_id, cmd.ApproveRequest(actor=contact(council),
                                                        request_id=request_id),
                         f"cannot approve a request: {ONLY_LGA_STAFF}, not {contact(council)}")
    await assert_refused(j, case_id, cmd.ProposePeerTeam(actor=ADVISER, team=team[:4]),
                         f"a request to propose team ({request_id}, by {OFFICER}) already "
                         "waits for approval; approve or decline it first")
    await assert_refused(j, case_id, cmd.ApproveRequest(actor=ADVISER, request_id="withdraw-9"),
                         "cannot approve: no request withdraw-9 waits for approval (waiting: "
                         f"{request_id} (propose team))")

    declined = await act(j, case_id, cmd.DeclineRequest(
        actor=ADVISER, request_id=request_id, reason="Two peers from one region"),
        Stage.SCOPED, ev.RequestDeclined)
    assert declined.state.awaiting_approval == () and declined.state.proposed_team == ()
    await assert_refused(j, case_id, cmd.ApproveRequest(actor=ADVISER, request_id=request_id),
                         f"cannot approve: no request {request_id} waits for approval "
                         "(waiting: none)")

    view = await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team),
                          Stage.SCOPED, ev.PeerTeamProposed)
    assert list(view.state.proposed_team) == team
    asked = await act(j, case_id, cmd.WithdrawCase(actor=ADVISER, reason="Council withdrew"),
                      Stage.SCOPED, ev.ApprovalRequested)
    [waiting] = asked.state.awaiting_approval
    withdrawn = await act(j, case_id, cmd.ApproveRequest(actor=OFFICER,
                                                         request_id=waiting.request_id),
                          Stage.WITHDRAWN, ev.RequestApproved, ev.CaseWithdrawn)
    assert withdrawn.state.withdrawal_reason == "Council withdrew"
    assert types_of(assert_store_agrees(j, withdrawn)) == [
        "CaseRequested", "CaseScoped", "ApprovalRequested", "RequestDeclined", *APPROVED,
        "PeerTeamProposed", *APPROVED, "CaseWithdrawn"]


async def test_refused_actions_record_nothing_anywhere(journeys_anywhere: Journeys) -> None:
    j = journeys_anywhere
    council = a_council()
    case_id = (await j.open(council)).state.case_id
    today = await j.today()
    team = demo_team(council)

    await assert_refused(j, case_id, cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.REMOTE, starts_on=today, ends_on=today),
        "cannot schedule the visit: the case must be peers selected or visit scheduled; "
        "confirm the peer team first")
    await assert_refused(j, case_id, cmd.ScopeCase(actor=contact(council), scope=["finance"],
                                                   visit_mode=VisitMode.ON_SITE),
                         f"cannot scope the case: {ONLY_LGA_STAFF}, not {contact(council)}")
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance"],
                                        visit_mode=VisitMode.ON_SITE), Stage.SCOPED,
              ev.CaseScoped)
    await assert_refused(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER),
                         "cannot confirm: no peer team has been proposed yet")
    home = PeerPlace(peer_id="p-home", name="Pat Local", role="officer", home_council=council)
    await assert_refused(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=[*team, home]),
                         "cannot propose peer p-home: peers must come from other councils, and "
                         f"Pat Local is from {council}")
    await assert_refused(j, case_id, cmd.ProposePeerTeam(
        actor=OFFICER, team=[team[0], team[0]]), f"cannot propose: peer {team[0].peer_id} "
        "appears twice")
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team), Stage.SCOPED,
                   ev.PeerTeamProposed)
    await assert_refused(j, case_id, cmd.ObjectToPeer(actor=OFFICER, peer_id=team[2].peer_id,
                                                      reason="Conflict"),
                         f"cannot object to a peer: only the council may, not {OFFICER}")
    await act(j, case_id, cmd.ObjectToPeer(actor=contact(council), peer_id=team[2].peer_id,
                                           reason="Conflict of interest"), Stage.SCOPED,
              ev.PeerObjectedTo)
    await assert_refused(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER),
                         f"cannot confirm: the council objected to peer {team[2].peer_id}; "
                         "propose a team without them")
    await assert_refused(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team),
                         f"cannot propose peer {team[2].peer_id}: the council objected to them; "
                         "choose someone else")
    leaderless = [p for p in team if p.role != "lead_member" and p.peer_id != team[2].peer_id]
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=leaderless), Stage.SCOPED,
                   ev.PeerTeamProposed)
    await assert_refused(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER),
                         "cannot confirm: a corporate peer challenge needs a lead member peer")
    await approved(j, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=[
        p for p in team if p.peer_id != team[2].peer_id]), Stage.SCOPED, ev.PeerTeamProposed)
    await act(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER), Stage.PEERS_SELECTED,
              ev.PeerTeamConfirmed)

    today = await j.today()
    await assert_refused(j, case_id, cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=today, ends_on=today + timedelta(days=14)),
        "cannot schedule a visit longer than 14 days")
    requested = (await j.cases.view(case_id)).state.requested_on
    assert requested is not None
    before_request = requested - timedelta(days=1)
    await assert_refused(j, case_id, cmd.ScheduleVisit(
        actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=before_request, ends_on=today),
        f"cannot schedule the visit: {before_request} is before the case was requested "
        f"({requested})")
    await act(j, case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                            starts_on=today, ends_on=today),
              Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    yesterday = today - timedelta(days=1)
    await assert_refused(j, case_id, cmd.RecordVisit(
        actor=OFFICER, started_on=today, ended_on=yesterday),
        f"cannot record the visit: it ends ({yesterday}) before it starts ({today})")
    await assert_refused(j, case_id, cmd.RecordVisit(
        actor=OFFICER, started_on=today, ended_on=today + timedelta(days=2)),
        f"cannot record the visit: {today + timedelta(days=2)} is in the future (today is "
        f"{today})")
    await act(j, case_id, cmd.RecordVisit(actor=OFFICER, started_on=today, ended_on=today),
              Stage.VISITED, ev.VisitHeld)
    await assert_refused(j, case_id, cmd.DraftReport(actor=OFFICER,
                                                     document_sha256=document("draft"),
                                                     sent_on=today),
                         "cannot send the draft report: record the feedback first")
    await act(j, case_id, cmd.GiveFeedback(actor=OFFICER, given_on=today, summary="Good."),
              Stage.VISITED, ev.FeedbackGiven)
    await act(j, case_id, cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                                          sent_on=today), Stage.REPORT_DRAFTED,
              ev.ReportDrafted)
    await assert_refused(j, case_id, cmd.PublishReport(actor=contact(council), published_on=today,
                                                       url=url(council, "report")),
                         "cannot publish: the report is still a draft; make it final")
    await assert_refused(j, case_id, cmd.SubmitFactualAccuracyComments(
        actor=OFFICER, comments="Looks fine"),
        f"cannot submit factual-accuracy comments: only the council may, not {OFFICER}")
    await act(j, case_id, cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")),
              Stage.REPORT_FINAL, ev.ReportMadeFinal)
    await assert_refused(j, case_id, cmd.FinaliseReport(actor=OFFICER,
                                                        document_sha256=document("rewritten")),
                         "cannot make final: report version 1 is already final and cannot be "
                         "changed; issue a correction with a reason")
    await assert_refused(j, case_id, cmd.CorrectReport(actor=OFFICER,
                                                       document_sha256=document("final"),
                                                       reason="No change"),
                         "cannot correct: the document is identical to version 1")
    await assert_refused(j, case_id, cmd.CloseCase(actor=OFFICER),
                         "cannot close the case: the case must be progress review published; "
                         "a case closes once its progress review report is published")
    await assert_refused(j, case_id, cmd.WithdrawCase(actor="auditor:kim", reason="Audit"),
                         f"cannot withdraw the case: {ONLY_LGA_STAFF}, not auditor:kim")

    final = await j.cases.view(case_id)
    assert final.state.stage == Stage.REPORT_FINAL
    assert_store_agrees(j, final)
    await approved(j, case_id, cmd.WithdrawCase(actor=OFFICER, reason="Test over."),
                   Stage.WITHDRAWN, ev.CaseWithdrawn)


async def admitted(env: WorkflowEnvironment, workflow_id: str, update_id: str) -> None:
    """Wait until the server holds the update (no worker has seen it yet)."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=env.client.namespace, identity="test",
        update_ref=UpdateRef(workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                             update_id=update_id),
        wait_policy=WaitPolicy(lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.
                               UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED))
    for _ in range(250):
        try:
            await env.client.workflow_service.poll_workflow_execution_update(request)
            return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.02)
    raise AssertionError(f"update {update_id} never reached the server")


async def test_a_refusal_under_the_lock_records_nothing_either(
        dev_server_env: WorkflowEnvironment, sqlite_store: EventStore) -> None:
    """Two finalisations in one workflow task both pass the validator; the handler, deciding
    again under the lock, refuses the second with the domain's words and records nothing.
    (The dev server: the time-skipping server does not hand a restarted worker the task.)"""
    env, task_queue = dev_server_env, f"cases-{uuid.uuid4().hex[:8]}"
    j = Journeys(CaseWorld(env=env, store=sqlite_store, task_queue=task_queue,
                           cases=CaseClient(env.client, task_queue=task_queue,
                                            store=sqlite_store)))
    try:
        council = a_council()
        async with build_worker(env.client, sqlite_store, task_queue):
            case_id = (await j.open(council)).state.case_id
            await to_visited(j, case_id, council)
            await act(j, case_id, cmd.DraftReport(actor=OFFICER, sent_on=await j.today(),
                                                  document_sha256=document("draft")),
                      Stage.REPORT_DRAFTED, ev.ReportDrafted)
        # No worker: both updates wait at the server and reach the workflow together.
        handle = j.handle(case_id)
        before = [e.event_type for e in await j.history(case_id)]
        starts = []
        for update_id in ("first", "second"):
            starts.append(asyncio.create_task(handle.start_update(
                ImprovementCase.act, id=update_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                arg=cmd.FinaliseReport(actor=OFFICER, document_sha256=document(update_id)))))
            await admitted(env, handle.id, update_id)
        async with build_worker(env.client, sqlite_store, task_queue):
            first, second = [await start for start in starts]
            answer = await first.result()
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await second.result()
            final = await j.cases.view(case_id)
        refusal = failed.value.cause
        assert isinstance(refusal, ApplicationError) and refusal.type == "CommandRefused"
        assert refusal.message == (
            f"case {case_id} (report final): cannot make final: report version 1 is already "
            "final and cannot be changed; issue a correction with a reason")
        added = [e.event_type for e in await j.history(case_id)][len(before):]
        assert added.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 2
        assert added.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 2
        assert added.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 1  # one append only
        assert answer == final and final.state.stage == Stage.REPORT_FINAL
        stored = assert_store_agrees(j, final)
        assert types_of(stored).count("ReportMadeFinal") == 1
        assert stored[-1].payload["document_sha256"] == document("first")
    finally:
        await j.leave_none_running()


async def test_one_open_case_per_council_and_kind(journeys: Journeys) -> None:
    j = journeys
    council = a_council()
    year = (await j.now()).year
    first = (await j.open(council)).state.case_id
    assert first == f"cpc-{council}-{year}"
    await act(j, first, cmd.ScopeCase(actor=OFFICER, scope=["finance"],
                                      visit_mode=VisitMode.REMOTE), Stage.SCOPED, ev.CaseScoped)

    position = j.store.last_position()
    with pytest.raises(ActionRefused) as refused:
        await j.open(council)
    assert str(refused.value) == (
        f"council {council} already has an open corporate peer challenge: case {first} "
        "(scoped); act on it, or withdraw it first")
    assert j.store.last_position() == position

    other_kind = (await j.open(council, kind=CaseKind.FINANCE)).state.case_id
    assert other_kind == f"fin-{council}-{year}"

    await approved(j, first, cmd.WithdrawCase(actor=OFFICER, reason="Wrong kind of review."),
                   Stage.WITHDRAWN, ev.CaseWithdrawn)
    second = await j.open(council)
    assert second.state.case_id == f"cpc-{council}-{year}-2"
    assert second.state.stage == Stage.REQUESTED and second.state.version == 1
    # requested, scoped, the withdrawal asked for and approved (with its effect)
    assert j.store.head(first)[0] == 5 and j.store.head(second.state.case_id)[0] == 1
    assert verify(j.store, first).ok and verify(j.store, second.state.case_id).ok

    # The workflow id is the council's slot; the older run is found by its CaseId search
    # attribute, which the time-skipping server cannot list (see the dev-server test below).
    with pytest.raises(CaseNotFound, match=f"newest case of that kind is {second.state.case_id}"):
        await j.cases.view(first)
    for case_id in (second.state.case_id, other_kind):
        await approved(j, case_id, cmd.WithdrawCase(actor=OFFICER, reason="Test over."),
                       Stage.WITHDRAWN, ev.CaseWithdrawn)


async def test_an_opened_case_is_listed_at_once_without_an_upsert(journeys: Journeys) -> None:
    """The start carries what the recorded request makes the case's search attributes, so
    opening costs no visibility write of ours (the only upsert is the SDK's own
    TemporalChangeVersion, for the workflow's patches)."""
    j = journeys
    council = a_council()
    case_id = (await j.open(council)).state.case_id
    attributes = search_attributes_of(await j.handle(case_id).describe())
    assert attributes == {
        "CaseId": case_id, "CouncilCode": council, "CaseKind": CPC.value,
        "CaseStage": Stage.REQUESTED.value, "EscalationLevel": 0, "NextDeadline": None,
    }
    upserted = {name for event in await j.history(case_id)
                if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
                for name in event.upsert_workflow_search_attributes_event_attributes
                .search_attributes.indexed_fields}
    assert upserted <= {"TemporalChangeVersion"}, upserted
    await approved(j, case_id, cmd.WithdrawCase(actor=OFFICER, reason="Test over."),
                   Stage.WITHDRAWN, ev.CaseWithdrawn)


async def test_search_attributes_follow_the_case(journeys: Journeys) -> None:
    j = journeys
    council = a_council()
    case_id = (await j.open(council)).state.case_id
    visited = await to_visited(j, case_id, council)
    assert visited.state.visit_recorded_at is not None
    # Described once a deadline runs: the time-skipping server keeps an unset NextDeadline as
    # a null that `describe()` cannot decode (the dev server drops it).
    attributes = search_attributes_of(await j.handle(case_id).describe())
    assert attributes == {
        "CaseId": case_id, "CouncilCode": council, "CaseKind": CPC.value,
        "CaseStage": Stage.VISITED.value, "EscalationLevel": 0,
        "NextDeadline": visited.state.visit_recorded_at + timedelta(days=91),
    }
    await approved(j, case_id, cmd.WithdrawCase(actor=OFFICER, reason="Test over."),
                   Stage.WITHDRAWN, ev.CaseWithdrawn)


async def test_an_older_case_of_a_reopened_slot_is_still_reachable(dev_world: CaseWorld) -> None:
    cases, council = dev_world.cases, a_council()
    register_council(dev_world.store, council)
    first = (await cases.start(council=council, kind=CPC, actor=OFFICER,
                               reason="First")).state.case_id
    await withdraw(cases, first, "Wrong kind of review.")
    second = (await cases.start(council=council, kind=CPC, actor=OFFICER,
                                reason="Second")).state.case_id
    assert second == f"{first}-2"
    older = await cases.view(first)
    assert older.state.case_id == first and older.state.stage == Stage.WITHDRAWN
    with pytest.raises(ActionRefused, match="the case is withdrawn"):
        await cases.act(first, cmd.CloseCase(actor=OFFICER))
    await withdraw(cases, second, "Test over.")
