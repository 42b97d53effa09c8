"""The baseline for bench/journey.py: the least a Temporal case could do per action.

`BareCase` is one workflow per case whose update handler runs one activity, and that activity
inserts one row into a plain table (a SQLAlchemy Core insert, one transaction) in the same
database as the event store. No domain rules, no validator, no lock, no hashing, no search
attributes, no timers: what is left is Temporal's own cost plus one durable write.

Two baselines, chosen per case when it starts (`BareStart.mode`):

- `activity` (issue 3's baseline, the default): each update runs one ordinary activity
  (`workflow.execute_activity`): scheduled by the server, polled from the task queue, and
  completed through the server, before the update's workflow task can finish.
- `local-activity` (a stricter reference): each update runs the insert as a local activity
  (`workflow.execute_local_activity`), in the worker that runs the workflow task, as the engine
  runs its appends; this is a strict subset of the engine's per-action work.
"""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():  # as the engine's workflow module does
    import sqlalchemy as sa
    from bare_rows import (
        BARE_INSERT,
        BARE_MODES,
        DESCRIPTIONS,
        STEPS_PER_CASE,
        BareActivities,
        BareMode,
        BareStart,
        BareStep,
        count_rows,
        create_table,
    )

if TYPE_CHECKING:
    from worker import WorkerSizing

__all__ = ["BARE_MODES", "DESCRIPTIONS", "STEPS_PER_CASE", "BareCase", "BareMode", "BareStart",
           "build_bare_worker", "count_rows", "create_table"]


@workflow.defn
class BareCase:
    @workflow.init
    def __init__(self, start: BareStart) -> None:
        self.start = start
        self.steps = 0

    @workflow.run
    async def run(self, start: BareStart) -> int:
        await workflow.wait_condition(lambda: self.steps >= STEPS_PER_CASE)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.steps

    @workflow.update
    async def act(self, step: int) -> int:
        row = BareStep(case_key=self.start.case_key, step=step)
        if self.start.mode == "local-activity":
            await workflow.execute_local_activity(
                BARE_INSERT, row, result_type=int, start_to_close_timeout=timedelta(seconds=30))
        else:
            await workflow.execute_activity(
                BARE_INSERT, row, result_type=int, start_to_close_timeout=timedelta(seconds=30))
        self.steps += 1
        return self.steps


def build_bare_worker(client: Client, engine: sa.Engine, task_queue: str,
                      sizing: WorkerSizing | None = None) -> Worker:
    """Configured as worker.build_worker configures the engine's: the same activity executor,
    sticky cache and workflow-task pollers (from the environment unless `sizing` is given)."""
    from runtime.workflow_code import compile_once  # as worker.build_worker does
    from worker import WorkerSizing  # not at the top: the workflow sandbox imports this module

    sizing = WorkerSizing.from_environment() if sizing is None else sizing
    compile_once(BareCase.__module__)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareCase],
        activities=[BareActivities(engine).insert_row],
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
        max_cached_workflows=sizing.max_cached_workflows,
        max_concurrent_workflow_task_polls=sizing.workflow_task_pollers,
    )
