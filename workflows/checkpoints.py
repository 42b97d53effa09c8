"""RecordCheckpoint: run by a Temporal schedule, records every case's head and a Merkle root."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

with workflow.unsafe.imports_passed_through():
    from activities.contracts import RECORD_CHECKPOINT, CheckpointRequest, CheckpointSummary

SCHEDULE_ID = "cases-checkpoints"


@workflow.defn
class RecordCheckpoint:
    @workflow.run
    async def run(self) -> CheckpointSummary:
        request = CheckpointRequest(event_id=str(workflow.uuid4()), at=workflow.now())
        summary: CheckpointSummary = await workflow.execute_activity(
            RECORD_CHECKPOINT, request, result_type=CheckpointSummary,
            start_to_close_timeout=timedelta(minutes=5))
        return summary


async def schedule_checkpoints(client: Client, every: timedelta, task_queue: str) -> None:
    """Create, or re-time, the schedule that records a checkpoint every `every`."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(RecordCheckpoint.run, id="cases-checkpoint",
                                           task_queue=task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP))
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(replace)
