"""`cases audit replay`: replay a case's Temporal history against today's workflow code and
check that the events the history says were appended are exactly the events in the store.

Replaying proves today's code still makes the same decisions (a non-deterministic change
fails). Capturing every append the replayed workflow asks for, and comparing it with the
store row by row, proves the store holds what the workflow recorded: nothing more, less or
different. Times are not compared: the store keeps the first recording's time of a retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from activities.contracts import APPEND_EVENTS, AppendEvents, EventToAppend
from eventstore import EventStore
from eventstore.chain import canonical_json
from runtime.converter import READING_CONVERTER
from workflows.checkpoints import RecordCheckpoint
from workflows.improvement_case import ImprovementCase

_captured: list[AppendEvents] = []


class _CaptureAppends(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _Inbound


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))


class _Outbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        if input.activity == APPEND_EVENTS and isinstance(input.args[0], AppendEvents):
            _captured.append(input.args[0])
        return super().start_local_activity(input)


@dataclass
class ReplayAudit:
    case_id: str
    workflow_id: str
    run_id: str
    appended: int = 0
    stored: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


async def find_run(client: Client, case_id: str) -> tuple[str, str]:
    """(workflow id, run id) of the case, found by its CaseId search attribute."""
    async for execution in client.list_workflows(f"CaseId = '{case_id}'"):
        return execution.id, execution.run_id
    raise LookupError(f"Temporal has no history of case {case_id} (never started here, or "
                      "deleted after the namespace's retention period)")


async def audit_replay(client: Client, store: EventStore, case_id: str,
                       workflow_id: str | None = None, run_id: str | None = None) -> ReplayAudit:
    if workflow_id is None:
        workflow_id, run_id = await find_run(client, case_id)
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history: WorkflowHistory = await handle.fetch_history()
    audit = ReplayAudit(case_id=case_id, workflow_id=workflow_id,
                        run_id=run_id or history.run_id)
    replayer = Replayer(workflows=[ImprovementCase, RecordCheckpoint],
                        data_converter=READING_CONVERTER, interceptors=[_CaptureAppends()],
                        workflow_runner=UnsandboxedWorkflowRunner())
    _captured.clear()
    try:
        await replayer.replay_workflow(history)
    except Exception as failure:
        audit.differences.append(f"the history does not replay against today's code: {failure}")
        return audit
    appended = _dedupe([append for append in _captured if append.case_id == case_id])
    audit.appended = len(appended)
    stored = store.read_case(case_id)
    audit.stored = len(stored)
    for version, (event, row) in enumerate(zip(appended, stored, strict=False), start=1):
        if (row.version, row.event_id, row.type) != (version, event.event_id, event.type):
            audit.differences.append(
                f"version {version}: the history appended {event.type} {event.event_id}; the "
                f"store has {row.type} {row.event_id} at version {row.version}")
        elif ((row.schema_version, row.actor, canonical_json(row.payload))
              != (event.schema_version, event.actor, canonical_json(event.payload))):
            audit.differences.append(
                f"version {version}: {row.type} {row.event_id} differs from what the history "
                "appended (payload, actor or schema version)")
    for missing in appended[len(stored):]:
        audit.differences.append(f"the history appended {missing.type} {missing.event_id}; "
                                 "the store does not have it")
    for extra in stored[len(appended):]:
        audit.differences.append(f"the store has version {extra.version} ({extra.type} "
                                 f"{extra.event_id}) that the history never appended")
    return audit


def _dedupe(appends: list[AppendEvents]) -> list[EventToAppend]:
    """Every event the history appended, once, in version order (a retried append repeats)."""
    seen: dict[int, EventToAppend] = {}
    for append in appends:
        for offset, event in enumerate(append.events):
            seen.setdefault(append.expected_version + offset + 1, event)
    return [seen[v] for v in sorted(seen)]
