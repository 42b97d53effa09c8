"""What the baseline workflow (bench/bare_workflow.py) sends and stores: its start and step
messages, its one table and its one activity.

Kept apart from the workflow and imported through the sandbox's passthrough, as the engine's
workflow imports its messages and domain: otherwise the sandbox would rebuild these pydantic
classes and this table for every new bare case, a cost the engine does not pay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from temporalio import activity

BARE_INSERT = "bare_insert"
STEPS_PER_CASE = 15
"""As many updates as a case's journey: the start's update and fourteen actions."""

BareMode = Literal["activity", "local-activity"]
BARE_MODES: tuple[BareMode, ...] = ("activity", "local-activity")
DESCRIPTIONS: dict[BareMode, str] = {
    "activity": "one activity per update (workflow.execute_activity), as issue 3 specifies",
    "local-activity": "one local activity per update (workflow.execute_local_activity), "
                      "stricter than issue 3's baseline",
}

metadata = sa.MetaData()

bare_rows = sa.Table(
    "bench_bare_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_key", sa.String(100), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


class BareStart(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_key: str
    mode: BareMode = "activity"


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


def create_table(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def count_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(bare_rows)).scalar_one())
