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
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError, FailureError

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


class CheckpointFailed(RuntimeError):
    """The worker recorded no checkpoint, or could not publish the one it recorded; the
    message is the worker's own, one line. `refused`: the store no longer extends the newest
    checkpoint, so nothing was recorded (tampering, not a fault)."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


async def checkpoint_now(client: Client, task_queue: str = TASK_QUEUE) -> CheckpointSummary:
    """Record a checkpoint at once, through the worker (as the schedule does)."""
    try:
        summary: CheckpointSummary = await client.execute_workflow(
            RecordCheckpoint.run, id=f"cases-checkpoint-{uuid.uuid4()}", task_queue=task_queue)
    except WorkflowFailureError as failed:
        cause: BaseException | None = failed.cause
        while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
            cause = cause.cause
        if not isinstance(cause, ApplicationError):
            raise
        raise CheckpointFailed(cause.message, refused=cause.type == "CheckpointRefused") from None
    return summary
