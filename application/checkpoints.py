"""The hourly checkpoint: the Temporal schedule that runs RecordCheckpoint."""

from __future__ import annotations

import uuid
from datetime import timedelta

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

from activities.contracts import CheckpointSummary
from workflows.checkpoints import RecordCheckpoint
from workflows.messages import TASK_QUEUE

SCHEDULE_ID = "cases-checkpoints"


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


async def checkpoint_now(client: Client, task_queue: str = TASK_QUEUE) -> CheckpointSummary:
    """Record a checkpoint at once, through the worker (as the schedule does)."""
    summary: CheckpointSummary = await client.execute_workflow(
        RecordCheckpoint.run, id=f"cases-checkpoint-{uuid.uuid4()}", task_queue=task_queue)
    return summary
