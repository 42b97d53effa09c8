"""Temporal is not a side door: what does not come through the engine's API is refused.

Anyone who can reach the Temporal namespace can start a case workflow or send it an update
with hand-written JSON. These tests are that person, on the time-skipping server the other
tests use, beside the tests' own worker (`case_world`, whose client signs with the session's
key, as the API does): a second client on the same connection with no codec (unsigned
payloads), or one that signs with a key that is not the engine's. The worker must refuse them
before the workflow reads them: an unsigned start fails its workflow at once (never a
workflow task retried for ever), an unsigned update is rejected, and nothing is recorded.

Then the starts the API itself signs that the server must still refuse, whatever the caller
sent: a council that is not in the register, a deadline policy the server does not have, a
user whose role may not open a case; and a start that carries its own deadlines runs by the
server's named policy instead. Each test names the attack.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from application.cases import ActionNotPermitted, ActionRefused, CaseClient
from application.journey import journey
from domain import commands as cmd
from domain.councils import Council
from domain.deadlines import DeadlinePolicy, DeadlineRules
from domain.peers import SelectionRules
from domain.policies import PolicyBook
from domain.vocabulary import CaseKind, DeadlineName, Stage
from eventstore.councils import import_councils
from runtime.converter import DATA_CONVERTER, signed_converter
from tests.conftest import CaseWorld
from tests.support import register_council
from worker import build_worker
from workflows import search_attributes as sa
from workflows.improvement_case import ImprovementCase
from workflows.messages import CaseStart, CaseView, case_id_for, workflow_id_for

CPC = CaseKind.CORPORATE_PEER_CHALLENGE
OFFICER = "case_officer:siân.jones"
ADVISER = "lga_adviser:raj.patel"
WORKFLOW_TASK_EVENTS = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED}
NOT_SIGNED = ("UnsignedCommand", "refused: it is not signed by the engine's API; only the "
              "engine's API may start or act on a case (nothing was recorded)")
WRONG_KEY = ("UnsignedCommand", "refused: its signature does not match the engine's key; only "
             "the engine's API may start or act on a case (nothing was recorded)")
CENTURY = timedelta(days=36500)
"""Deadlines nobody would ever miss: what a forged start would like its case to run by."""


def a_council() -> str:
    """A GSS-shaped code no other test (nor any real council) uses."""
    return f"E{uuid.uuid4().int % 10**8:08d}"


def client_with(world: CaseWorld, converter: DataConverter) -> Client:
    """Another client on the tests' Temporal connection, encoding as `converter` does."""
    signed = world.env.client
    return Client(signed.service_client, namespace=signed.namespace, data_converter=converter)


def unsigned(world: CaseWorld) -> Client:
    """What anyone with the namespace has: the SDK's payloads, as JSON, with no codec."""
    return client_with(world, DATA_CONVERTER)


def start_json(council: str, actor: str, year: int, *, kind: CaseKind = CPC,
               **extra: Any) -> dict[str, Any]:
    """A case's start written by hand, as CaseStart's JSON."""
    return {"request": {"actor": actor, "case_id": case_id_for(kind, council, year),
                        "council": council, "kind": kind.value,
                        "reason": "Opened straight on Temporal", "deadline_policy": "standard"},
            **extra}


def century_policy() -> dict[str, Any]:
    every = {name: CENTURY for name in DeadlineRules.model_fields if name != "reminders"}
    return DeadlinePolicy(default=DeadlineRules(**every)).model_dump(mode="json")


async def year_of(world: CaseWorld) -> int:
    return (await world.env.get_current_time()).year


async def history(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    return list((await handle.fetch_history()).events)


def local_activities(events: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """The markers of local activities (an append, an opening check); not a patch's."""
    return [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and e.marker_recorded_event_attributes.marker_name == "core_local_activity"]


async def assert_start_failed(world: CaseWorld, handle: WorkflowHandle[Any, Any],
                              refusal: tuple[str, str], case_id: str, position: int, *,
                              checked: bool = False) -> None:
    """The workflow failed (promptly, its task never retried) with `refusal`, the (type,
    message) of its ApplicationError; no event of the case is in the store, nothing was
    appended at all. No local activity ran, or (`checked`) only the one that checked the
    opening: one marker in the history, never an append's."""
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=30)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message) == refusal
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    events = await history(handle)
    kinds = [e.event_type for e in events]
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds, "a task was retried"
    assert len(local_activities(events)) == int(checked)
    assert world.store.head(case_id)[0] == 0
    assert world.store.last_position() == position


@pytest_asyncio.fixture
async def opened(case_world: CaseWorld) -> AsyncIterator[tuple[CaseWorld, str]]:
    """A real case, opened through the API (signed) for a council of its own."""
    council = register_council(case_world.store, a_council())
    view = await case_world.cases.start(council=council, kind=CPC, actor=OFFICER,
                                        reason="A real case",
                                        now=await case_world.env.get_current_time())
    yield case_world, view.state.case_id


async def assert_update_rejected(world: CaseWorld, client: Client, case_id: str,
                                 payload: dict[str, Any], refusal: tuple[str, str]) -> None:
    """The update `payload`, sent by `client`, is rejected with `refusal`: the case, the store
    and the history are as they were (the test server keeps only the workflow task that ran
    the rejection; no update, no marker, no command)."""
    council = case_id.split("-")[1]
    handle = client.get_workflow_handle(workflow_id_for(CPC, council))
    before, position = await history(handle), world.store.last_position()
    view = await world.cases.view(case_id)
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update("act", payload)
    cause = rejected.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message) == refusal
    after = await history(handle)
    assert after[:len(before)] == before
    assert {e.event_type for e in after[len(before):]} <= WORKFLOW_TASK_EVENTS
    assert world.store.last_position() == position
    assert await world.cases.view(case_id) == view


# --- (a) unsigned starts ---------------------------------------------------------------------

FORGED_STARTS = {
    "a made-up officer": lambda council, year: start_json(council, "officer:ghost", year),
    "a council not in the register": lambda council, year: start_json(
        a_council(), OFFICER, year),
    "inline 100-year deadlines": lambda council, year: start_json(
        council, OFFICER, year, policy=century_policy()),
}


@pytest.mark.parametrize("forgery", sorted(FORGED_STARTS))
async def test_a_hand_written_start_without_the_key_fails_and_records_nothing(
        case_world: CaseWorld, forgery: str) -> None:
    """Attack: open a case straight on Temporal, with JSON written by hand."""
    council = register_council(case_world.store, a_council())
    start = FORGED_STARTS[forgery](council, await year_of(case_world))
    request = start["request"]
    position = case_world.store.last_position()
    handle = await unsigned(case_world).start_workflow(
        "ImprovementCase", start, id=workflow_id_for(CPC, request["council"]),
        task_queue=case_world.task_queue,
        search_attributes=sa.at_opening(request["case_id"], request["council"], CPC.value))
    await assert_start_failed(case_world, handle, NOT_SIGNED, request["case_id"], position)


# --- (b) unsigned updates --------------------------------------------------------------------

async def test_a_hand_written_withdrawal_without_the_key_is_rejected_and_records_nothing(
        opened: tuple[CaseWorld, str]) -> None:
    """Attack: withdraw someone's case by sending the update straight to its workflow."""
    world, case_id = opened
    await assert_update_rejected(world, unsigned(world), case_id, {
        "action": "withdraw", "actor": "case_officer:ghost2", "case_id": case_id,
        "reason": "Nobody asked for this"}, NOT_SIGNED)
    assert (await world.cases.view(case_id)).state.awaiting_approval == ()


async def test_a_hand_written_approval_without_the_key_does_not_pass_the_four_eyes_rule(
        opened: tuple[CaseWorld, str]) -> None:
    """Attack: be your own second pair of eyes, approving a waiting request by hand."""
    world, case_id = opened
    asked = await world.cases.act(case_id, cmd.WithdrawCase(actor=OFFICER,
                                                            reason="Council asked us to stop"))
    [waiting] = asked.state.awaiting_approval
    await assert_update_rejected(world, unsigned(world), case_id, {
        "action": "approve", "actor": "lga_adviser:ghost3", "case_id": case_id,
        "request_id": waiting.request_id}, NOT_SIGNED)
    view = await world.cases.view(case_id)
    assert view.state.stage == Stage.REQUESTED and view.state.awaiting_approval == (waiting,)
    # The request still waits for a real second person, through the API.
    approved = await world.cases.act(case_id, cmd.ApproveRequest(actor=ADVISER,
                                                                 request_id=waiting.request_id))
    assert approved.state.stage == Stage.WITHDRAWN


# --- (c) signed with another key -------------------------------------------------------------

async def test_a_start_signed_with_another_key_fails_and_records_nothing(
        case_world: CaseWorld) -> None:
    """Attack: sign the start yourself, with a key of your own making."""
    council = register_council(case_world.store, a_council())
    forger = client_with(case_world, signed_converter(os.urandom(32)))
    start = start_json(council, OFFICER, await year_of(case_world))
    case_id = start["request"]["case_id"]
    position = case_world.store.last_position()
    handle = await forger.start_workflow(
        "ImprovementCase", start, id=workflow_id_for(CPC, council),
        task_queue=case_world.task_queue,
        search_attributes=sa.at_opening(case_id, council, CPC.value))
    await assert_start_failed(case_world, handle, WRONG_KEY, case_id, position)


async def test_an_update_signed_with_another_key_is_rejected_and_records_nothing(
        opened: tuple[CaseWorld, str]) -> None:
    """Attack: sign a withdrawal yourself, with a key of your own making."""
    world, case_id = opened
    forger = client_with(world, signed_converter(os.urandom(32)))
    await assert_update_rejected(world, forger, case_id, {
        "action": "withdraw", "actor": "case_officer:ghost2", "case_id": case_id,
        "reason": "Nobody asked for this"}, WRONG_KEY)


# --- (d) signed starts the server's terms refuse ---------------------------------------------

async def past_the_api(world: CaseWorld, request: cmd.RequestCase, *,
                       task_queue: str | None = None,
                       ) -> tuple[ApplicationError, WorkflowHandle[Any, Any]]:
    """Send what `CaseClient.start` sends (the start and its `opened` update, signed with the
    API's key) without the checks the API makes first: the workflow's refusal, and its
    handle."""
    opening = WithStartWorkflowOperation(
        ImprovementCase.run, CaseStart(request=request),
        id=workflow_id_for(request.kind, request.council),
        task_queue=task_queue or world.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=sa.at_opening(request.case_id, request.council, request.kind.value))
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await world.env.client.execute_update_with_start_workflow(
            ImprovementCase.opened, start_workflow_operation=opening)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    return cause, await opening.workflow_handle()


async def assert_opening_refused(world: CaseWorld, council: str, deadline_policy: str,
                                 words: str, *, task_queue: str | None = None) -> None:
    """A signed start for `council` on `deadline_policy` is refused and records nothing:
    through the API's client (by its own check or by the worker's, naming what it refused),
    and sent past the API's checks, when the worker refuses it with `words` (the opening
    check's, activities/opening_activities.py) and the workflow fails."""
    now = await world.env.get_current_time()
    case_id = case_id_for(CPC, council, now.year)
    position = world.store.last_position()
    cases = CaseClient(world.env.client, task_queue=task_queue or world.task_queue,
                       store=world.store)
    with pytest.raises(ActionRefused) as refused:
        await cases.start(council=council, kind=CPC, actor=OFFICER, reason="Signed start",
                          deadline_policy=deadline_policy, now=now)
    named = council if deadline_policy == "standard" else repr(deadline_policy)
    assert named in str(refused.value)
    assert world.store.head(case_id)[0] == 0 and world.store.last_position() == position

    refusal, handle = await past_the_api(world, cmd.RequestCase(
        actor=OFFICER, case_id=case_id, council=council, kind=CPC, reason="Signed start",
        deadline_policy=deadline_policy), task_queue=task_queue)
    assert (refusal.type, refusal.message) == ("OpeningRefused", words)
    await assert_start_failed(world, handle, ("OpeningRefused", words), case_id, position,
                              checked=True)


async def test_a_signed_start_for_a_council_not_in_the_register_is_refused(
        case_world: CaseWorld) -> None:
    """Attack: open a case for a council that does not exist (or is not yet imported)."""
    council = a_council()
    await assert_opening_refused(
        case_world, council, "standard",
        f"cannot open the case: council {council} is not in the register; import it with "
        "`cases councils import`; nothing was recorded")


async def test_a_signed_start_for_a_council_that_has_ended_is_refused(
        case_world: CaseWorld) -> None:
    """Attack: open a case for a council the register says no longer exists."""
    council = a_council()
    ended = (await case_world.env.get_current_time()).date() - timedelta(days=400)
    import_councils(case_world.store, [Council(
        gss_code=council, code="OLD", name="Old Borough Council", short_name="Old",
        type="NMD", nation="England", current=False, end_date=ended)])
    await assert_opening_refused(
        case_world, council, "standard",
        f"cannot open the case: council {council} (Old Borough Council) ended on {ended}; "
        "nothing was recorded")


async def test_a_signed_start_on_a_policy_the_server_does_not_have_is_refused(
        case_world: CaseWorld) -> None:
    """Attack: name deadlines of your own ("forever") instead of one of the server's."""
    council = register_council(case_world.store, a_council())
    await assert_opening_refused(
        case_world, council, "forever",
        "cannot open the case: deadline policy 'forever' is not one of this server's (the "
        "server's policies are: far-peers, short-hours, short-reminded, standard, demo-Ns); "
        "nothing was recorded")


async def test_a_signed_start_on_demo_deadlines_is_refused_outside_demo_mode(
        case_world: CaseWorld) -> None:
    """Attack: ask a production server (no demo mode) for deadlines of seconds."""
    council = register_council(case_world.store, a_council())
    task_queue = f"production-{uuid.uuid4().hex[:8]}"
    async with build_worker(case_world.env.client, case_world.store, task_queue,
                            policies=PolicyBook()):
        await assert_opening_refused(
            case_world, council, "demo-5s",
            "cannot open the case: deadline policy 'demo-5s' is not one of this server's "
            "(demo deadlines need a server in demo mode); nothing was recorded",
            task_queue=task_queue)


# --- (e) signed starts the role table refuses ------------------------------------------------

NOT_LGA_STAFF = {"council user": "council:{council}:sam.lee",
                 "legacy council": "council:{council}", "auditor": "auditor:kim",
                 "admin": "admin:root"}


@pytest.mark.parametrize("who", list(NOT_LGA_STAFF))
async def test_a_signed_start_by_someone_who_may_not_open_a_case_is_refused(
        case_world: CaseWorld, who: str) -> None:
    """Attack: a council's user (or an auditor, or an admin) opens a case on their council.
    The API refuses; sent past the API's checks, the workflow's rules refuse it too, by the
    role table and in the same words."""
    council = register_council(case_world.store, a_council())
    actor = NOT_LGA_STAFF[who].format(council=council)
    now = await case_world.env.get_current_time()
    case_id = case_id_for(CPC, council, now.year)
    words = (f"case {case_id} (not started): cannot request a case: only a case officer or an "
             f"LGA principal adviser may, not {actor}")
    position = case_world.store.last_position()
    with pytest.raises(ActionNotPermitted) as refused:
        await case_world.cases.start(council=council, kind=CPC, actor=actor, reason="Ours",
                                     now=now)
    assert str(refused.value) == words

    refusal, handle = await past_the_api(case_world, cmd.RequestCase(
        actor=actor, case_id=case_id, council=council, kind=CPC, reason="Ours"))
    assert (refusal.type, refusal.message) == ("CommandNotPermitted", words)
    await assert_start_failed(case_world, handle, ("CommandNotPermitted", words), case_id,
                              position, checked=True)


# --- a signed start's own terms are not the case's -------------------------------------------

async def test_a_signed_start_carrying_its_own_deadlines_runs_by_the_servers_policy(
        case_world: CaseWorld) -> None:
    """Attack: a start (signed) that carries 100-year deadlines, no four-eyes rule and
    selection rules of its own. The case opens, but on the server's terms: the named policy's
    deadlines, its selection rules, four eyes required; the request records them."""
    council = register_council(case_world.store, a_council())
    now = await case_world.env.get_current_time()
    case_id = case_id_for(CPC, council, now.year)
    start = CaseStart(request=cmd.RequestCase(
        actor=OFFICER, case_id=case_id, council=council, kind=CPC, reason="My own terms",
        deadline_policy="standard", four_eyes=False,
        selection_rules=SelectionRules(min_distance_km=0, cooling_off_years=0)),
        policy=DeadlinePolicy.model_validate(century_policy()),
        selection_rules=SelectionRules(min_distance_km=0, cooling_off_years=0))
    handle = await case_world.env.client.start_workflow(
        ImprovementCase.run, start, id=workflow_id_for(CPC, council),
        task_queue=case_world.task_queue,
        search_attributes=sa.at_opening(case_id, council, CPC.value))
    try:
        view: CaseView = await handle.execute_update(ImprovementCase.opened)
        assert view.state.four_eyes and view.state.deadline_policy == "standard"
        [requested] = case_world.store.read_case(case_id)
        assert requested.payload["four_eyes"] is True
        assert requested.payload["deadline_policy"] == "standard"
        assert requested.payload["selection_rules"] == SelectionRules().model_dump(mode="json")

        for step in journey(council, now.date(), OFFICER, approver=ADVISER):
            view = await case_world.cases.act(case_id, step)
            if isinstance(step, cmd.RecordVisit):
                break
        visited = view.state.visit_recorded_at
        assert view.state.stage == Stage.VISITED and visited is not None
        assert view.next_deadline is not None
        assert view.next_deadline.deadline == DeadlineName.REPORT_PUBLICATION
        assert view.next_deadline.due_at == visited + timedelta(days=91)  # not 100 years
    finally:
        await handle.terminate("test over")
