"""The baseline for bench/journey.py: the least a Temporal case could do per action.

`BareCase` is one workflow per case whose update handler runs one local activity, and that
activity inserts one row into a plain table (a SQLAlchemy Core insert, one transaction) in
the same database as the event store. No domain rules, no validator, no lock, no hashing, no
search attributes, no timers: what is left is Temporal's own cost plus one durable write.
"""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():  # as the engine's workflow module does
    import sqlalchemy as sa
    from pydantic import BaseModel, ConfigDict

BARE_INSERT = "bare_insert"
STEPS_PER_CASE = 15
"""As many updates as a case's journey: the start's update and fourteen actions."""

metadata = sa.MetaData()

bare_rows = sa.Table(
    "bench_bare_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_key", sa.String(100), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


class BareStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_key: str
    step: int


class BareActivities:
    """The one activity, bound to an engine (the event store's own, in the benchmark)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @activity.defn(name=BARE_INSERT)
    def insert_row(self, step: BareStep) -> int:
        with self.engine.begin() as conn:
            conn.execute(bare_rows.insert(), {"case_key": step.case_key, "step": step.step,
                                              "recorded_at": datetime.now(UTC)})
        return step.step


@workflow.defn
class BareCase:
    @workflow.init
    def __init__(self, case_key: str) -> None:
        self.case_key = case_key
        self.steps = 0

    @workflow.run
    async def run(self, case_key: str) -> int:
        await workflow.wait_condition(lambda: self.steps >= STEPS_PER_CASE)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.steps

    @workflow.update
    async def act(self, step: int) -> int:
        await workflow.execute_local_activity(
            BARE_INSERT, BareStep(case_key=self.case_key, step=step), result_type=int,
            start_to_close_timeout=timedelta(seconds=30))
        self.steps += 1
        return self.steps


def create_table(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def count_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(bare_rows)).scalar_one())


def build_bare_worker(client: Client, engine: sa.Engine, task_queue: str) -> Worker:
    """Configured as worker.build_worker configures the engine's: same executor, defaults."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareCase],
        activities=[BareActivities(engine).insert_row],
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
    )
