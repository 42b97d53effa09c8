"""CaseClient: open a case, act on it, look at it — the one way officers' tools reach Temporal.

Refusals come back as `ActionRefused` carrying the domain's own message, whether the rules
refused in the update's validator (nothing recorded anywhere) or under the handler's lock.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from application.errors import ActionNotPermitted as ActionNotPermitted
from application.errors import ActionRefused as ActionRefused
from application.errors import CaseNotFound as CaseNotFound
from domain.commands import AnyCommand, RequestCase
from domain.policies import STANDARD
from domain.rules import CommandNotPermitted, CommandRefused, NotThisCase, decide
from domain.state import CaseState, fold
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore
from eventstore.councils import known_council
from eventstore.projections import (
    ProjectionStatus,
    Projector,
    case_rows,
    require_sound,
    status,
)
from workflows import search_attributes as sa
from workflows.improvement_case import ImprovementCase
from workflows.messages import (
    TASK_QUEUE,
    CaseStart,
    CaseView,
    case_id_for,
    workflow_id_for,
    workflow_id_for_case,
)

_GSS = re.compile(r"^[EKNSW][0-9]{8}$")
CaseHandle = WorkflowHandle[Any, CaseView]
"""A case workflow's handle (typed by its result: the SDK's typed-by-method form trips mypy)."""




def _refused_here(refused: CommandRefused) -> ActionRefused:
    """The rules' refusal, decided in this process, as the application says it."""
    if isinstance(refused, CommandNotPermitted):
        return ActionNotPermitted(str(refused))
    return ActionRefused(str(refused))


def _refusal(cause: ApplicationError) -> ActionRefused:
    """The rules' refusal, decided in the workflow and carried back by Temporal."""
    if cause.type == CommandNotPermitted.__name__:
        return ActionNotPermitted(cause.message)
    return ActionRefused(cause.message)


class CaseClient:
    def __init__(self, client: Client, *, store: EventStore,
                 task_queue: str = TASK_QUEUE) -> None:
        """`store` is where case ids are taken from: a case id is never used twice."""
        self.client = client
        self.task_queue = task_queue
        self.store = store

    async def start(self, *, council: str, kind: CaseKind, reason: str, actor: str,
                    scope: list[str] | None = None, budget_gap_pence: int | None = None,
                    deadline_policy: str = STANDARD, requested_on: date | None = None,
                    now: datetime | None = None, request_id: str | None = None) -> CaseView:
        """Open a case for a council, on the server's deadline policy of that name; refused if
        that council has one of the kind open. The worker checks the council and the policy
        again, and records the terms the case runs by. A `request_id` already used to open
        this council's case of this kind answers as that opening did, and opens nothing."""
        known = known_council(self.store, council)
        if known is None:
            raise ActionRefused(f"council {council} is not a council this engine knows; import "
                                "the register with `cases councils import PATH.csv`")
        if not known.current:
            raise ActionRefused(f"council {council} ({known.name}) ended on {known.end_date}")
        year = (now or datetime.now(UTC)).year
        case_id = self._free_case_id(kind, council, year)
        request = RequestCase(actor=actor, case_id=case_id, council=council, kind=kind,
                              reason=reason, scope=scope or [],
                              budget_gap_pence=budget_gap_pence, deadline_policy=deadline_policy,
                              requested_on=requested_on)
        try:
            decide(CaseState(case_id=case_id), request, now or datetime.now(UTC))
        except CommandRefused as refused:
            raise _refused_here(refused) from None
        workflow_id = workflow_id_for(kind, council)
        opening = WithStartWorkflowOperation(
            ImprovementCase.run,
            CaseStart(request=request),
            id=workflow_id, task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=sa.at_opening(case_id, council, kind.value),
        )
        try:
            # One round trip: the start and the `opened` update travel together and are
            # handled in the workflow's first task.
            return await self.client.execute_update_with_start_workflow(
                ImprovementCase.opened, start_workflow_operation=opening, id=request_id)
        except WorkflowUpdateFailedError as failed:  # the workflow refused its opening
            if isinstance(failed.cause, ApplicationError):
                raise _refusal(failed.cause) from None
            raise
        except (WorkflowAlreadyStartedError, RPCError) as refused:
            if isinstance(refused, RPCError) and refused.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            with contextlib.suppress(WorkflowAlreadyStartedError, RPCError):
                await opening.workflow_handle()  # the SDK's future holds the same refusal
        if request_id is not None:  # a retry of an opening that went through: its answer
            earlier = await self._earlier_answer(workflow_id, request_id)
            if earlier is not None:
                return earlier
        open_case = await self.client.get_workflow_handle(
            workflow_id, result_type=CaseView).query(ImprovementCase.view)
        stage = open_case.state.stage.label if open_case.state.stage else "starting"
        raise ActionRefused(
            f"council {council} already has an open {kind.value.replace('_', ' ')}: case "
            f"{open_case.state.case_id} ({stage}); act on it, or withdraw it first")

    async def _earlier_answer(self, workflow_id: str, request_id: str) -> CaseView | None:
        """The answer an update with this id already had on the workflow, if it had one."""
        handle = self.client.get_workflow_handle(workflow_id, result_type=CaseView)
        try:
            earlier: CaseView = await handle.get_update_handle(
                request_id, result_type=CaseView).result()
            return earlier
        except WorkflowUpdateFailedError as failed:
            if isinstance(failed.cause, ApplicationError):
                raise _refusal(failed.cause) from None
            raise
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    def _free_case_id(self, kind: CaseKind, council: str, year: int) -> str:
        attempt = 1
        while True:
            case_id = case_id_for(kind, council, year, attempt)
            if self.store.head(case_id)[0] == 0:
                return case_id
            attempt += 1

    async def act(self, case_id: str, command: AnyCommand,
                  request_id: str | None = None) -> CaseView:
        """Send one action to the case; the answer is the case as it now stands.

        The update goes straight to the council's slot, naming the case, so the common path is
        one round trip. Only when it cannot land (the slot holds a newer case, or the case's
        workflow has finished) does the client look at the case, to say why. `request_id` is
        the update's id: Temporal answers a second update with the same id with the first
        one's outcome and records nothing, across worker restarts too."""
        meant = command.model_copy(update={"case_id": case_id})
        try:
            workflow_id = workflow_id_for_case(case_id)
        except (ValueError, StopIteration):
            raise CaseNotFound(f"{case_id!r} is not a case id (like cpc-E06000001-2026)") from None
        handle: CaseHandle = self.client.get_workflow_handle(workflow_id, result_type=CaseView)
        try:
            return await handle.execute_update(ImprovementCase.act, meant, id=request_id)
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            if not isinstance(cause, ApplicationError):
                raise
            if cause.type != NotThisCase.__name__:
                raise _refusal(cause) from None
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        return await self._explain(case_id, command)

    async def _explain(self, case_id: str, command: AnyCommand) -> CaseView:
        """The update did not reach an open case `case_id`: find the case and say why it cannot
        take the action (a closed case refuses everything, by the domain's own words)."""
        _handle, current = await self._handle(case_id)
        try:
            decide(current.state, command, datetime.now(UTC))
        except CommandRefused as refused:
            raise _refused_here(refused) from None
        raise ActionRefused(f"case {case_id} is not open to actions") from None

    async def view(self, case_id: str) -> CaseView:
        return (await self._handle(case_id))[1]

    async def _handle(self, case_id: str) -> tuple[CaseHandle, CaseView]:
        try:
            workflow_id = workflow_id_for_case(case_id)
        except (ValueError, StopIteration):
            raise CaseNotFound(f"{case_id!r} is not a case id (like cpc-E06000001-2026)") from None
        handle: CaseHandle = self.client.get_workflow_handle(workflow_id, result_type=CaseView)
        try:
            current = await handle.query(ImprovementCase.view)
        except RPCError:
            raise CaseNotFound(f"case {case_id} is not known to Temporal") from None
        if current.state.case_id != case_id:  # an older case of the same council and kind
            handle = await self._older_run(case_id, workflow_id, current.state.case_id)
            current = await handle.query(ImprovementCase.view)
        return handle, current

    async def _older_run(self, case_id: str, workflow_id: str,
                         newest: str) -> CaseHandle:
        try:
            async for execution in self.client.list_workflows(f"CaseId = '{case_id}'"):
                return self.client.get_workflow_handle(workflow_id, run_id=execution.run_id,
                                                       result_type=CaseView)
        except RPCError:
            pass
        raise CaseNotFound(f"case {case_id} is not known to Temporal (the council's newest case "
                           f"of that kind is {newest}); its history is in the store")


async def read_case(cases: CaseClient, case_id: str) -> tuple[CaseView, str | None]:
    """The case as its workflow holds it; when Temporal does not have it (or cannot be
    reached), as the store's events fold, with the reason the store answered."""
    try:
        return await cases.view(case_id), None
    except (CaseNotFound, RuntimeError) as unavailable:
        events = cases.store.read_case(case_id)
        if not events:
            raise CaseNotFound(f"no case {case_id} in Temporal or in the store") from None
        state = fold(case_id, [e.to_recorded() for e in events])
        return CaseView(state=state), f"from the store: {unavailable}"


def current_read_models(store: EventStore) -> ProjectionStatus:
    """The read models caught up to the store's newest event, so what was just recorded is
    shown; or ProjectionBroken, saying where the projection stopped.

    One SELECT when they are current (the workers keep them so): the catch-up, which locks
    the projection's row, runs only when they are behind."""
    current = status(store.engine)
    if current.behind and current.problem is None:
        Projector(store).catch_up()
        return require_sound(store.engine)
    if current.problem is not None:
        return require_sound(store.engine)
    return current


def list_cases(store: EventStore, *, stage: Stage | None = None, council: str | None = None,
               kind: CaseKind | None = None, escalated: bool = False,
               include_ended: bool = False) -> list[dict[str, Any]]:
    """Cases from the read models (open ones unless `include_ended`), soonest deadline first.

    The read models are caught up first, so a case just started or acted on is listed as it
    now stands (the workers keep them current too; this only closes the last fraction of a
    second). A projection that stopped on a gap or a broken link raises ProjectionBroken."""
    if council is not None and not _GSS.match(council):
        raise ActionRefused(f"council {council!r}: expected a GSS code like E06000001")
    current_read_models(store)
    return [{"case": row.case_id, "council": row.council, "kind": row.kind,
             "stage": row.stage, "next_deadline": row.next_deadline_at,
             "escalation_level": row.escalation_level,
             "status": "open" if Stage(row.stage).is_open else row.stage}
            for row in case_rows(store.engine, stage=None if stage is None else Stage(stage).value,
                                 council=council,
                                 kind=None if kind is None else CaseKind(kind).value,
                                 escalated=escalated, include_ended=include_ended)]
