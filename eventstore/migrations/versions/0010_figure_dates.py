"""Read models: the dates that place a case's figure facts in a period, as indexed columns.

`cases report annual` then reads only the cases a period's figures can count (a visit, a
publication or an escalation in it) instead of every case's facts. The read models go back
to position 0, their rows dropped, so the workers project everything again and fill them in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_DATES = ("visit_ended_on", "report_published_on", "action_plan_published_on",
          "escalations_from", "escalations_to")


def upgrade() -> None:
    with op.batch_alter_table("case_figures") as batch:
        for column in _DATES:
            batch.add_column(sa.Column(column, sa.Date, nullable=True))
    for column in _DATES[:3]:
        op.create_index(f"ix_case_figures_{column}", "case_figures", [column])
    op.create_index("ix_case_figures_escalations", "case_figures",
                    ["escalations_from", "escalations_to"])
    for table in ("case_figures", "council_summaries", "case_summaries"):
        op.execute(sa.text(f"DELETE FROM {table}"))
    op.execute(sa.text("UPDATE projections SET position = 0, problem = NULL "
                       "WHERE name = 'read_models'"))


def downgrade() -> None:
    op.drop_index("ix_case_figures_escalations", "case_figures")
    for column in _DATES[:3]:
        op.drop_index(f"ix_case_figures_{column}", "case_figures")
    with op.batch_alter_table("case_figures") as batch:
        for column in _DATES:
            batch.drop_column(column)
