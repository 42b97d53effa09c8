"""Cases nothing will move on: open in the store, but their workflow has ended (terminated
by hand, say) without the case closing. No deadline will lapse and no escalation will be
raised for them, so `cases list` and `cases verify` name them."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from eventstore import EventStore
from eventstore.verify import cases_left_open
from workflows import search_attributes as sa
from workflows.messages import workflow_id_for_case


@dataclass(frozen=True)
class StuckCase:
    case_id: str
    last_event: str
    workflow_status: str
    """What Temporal says of the case's workflow: TERMINATED, FAILED, … or NOT_FOUND."""

    def __str__(self) -> str:
        return (f"case {self.case_id}: open in the store (last event {self.last_event}) but "
                f"its workflow is {self.workflow_status}, so no deadline or escalation will "
                "act on it; an operator must look into it")


async def stuck_cases(client: Client, store: EventStore) -> list[StuckCase]:
    """Every case left open in the store without a running workflow of its own. Each one is
    checked by describing its workflow (visibility may lag; a describe does not)."""
    left_open = cases_left_open(store)
    running = set()
    async for execution in client.list_workflows(
            "WorkflowType = 'ImprovementCase' AND ExecutionStatus = 'Running'"):
        running.add(execution.typed_search_attributes.get(sa.CASE_ID))
    stuck = []
    for case_id, last_event in sorted(left_open.items()):
        if case_id in running:
            continue
        try:
            workflow_id = workflow_id_for_case(case_id)
        except (ValueError, StopIteration):
            continue  # not a case id the engine made (imported or test data): no workflow
        handle = client.get_workflow_handle(workflow_id)
        try:
            described = await handle.describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            stuck.append(StuckCase(case_id, last_event, "NOT_FOUND"))
            continue
        running_this_case = (described.status is not None
                             and described.status.name == "RUNNING"
                             and described.typed_search_attributes.get(sa.CASE_ID) == case_id)
        if running_this_case:
            continue
        if described.typed_search_attributes.get(sa.CASE_ID) != case_id:
            status = "ended (its slot now holds a newer case)"
        else:
            status = described.status.name if described.status else "unknown"
        stuck.append(StuckCase(case_id, last_event, status))
    return stuck
