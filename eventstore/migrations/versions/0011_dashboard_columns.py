"""Read models: who asked for each case, how many of its requests wait for a second person,
and an index in deadline order, so an officer's dashboard reads a page of rows in SQL.

Until now the dashboard read every open case's summary (and every request event, and every
open case's state JSON) to show the first fifty of each list. The read models go back to
position 0 with their rows dropped, so the workers project every event again and fill the new
columns in (the read models are derived: nothing is lost).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_summaries") as batch:
        batch.add_column(sa.Column("requested_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("awaiting_approval", sa.Integer, nullable=False,
                                   server_default="0"))
    op.create_index("ix_case_summaries_requested_by", "case_summaries", ["requested_by"])
    op.create_index("ix_case_summaries_next_deadline", "case_summaries",
                    ["next_deadline_at", "case_id"])
    for table in ("case_figures", "council_summaries", "case_summaries"):
        op.execute(sa.text(f"DELETE FROM {table}"))
    op.execute(sa.text("UPDATE projections SET position = 0, problem = NULL "
                       "WHERE name = 'read_models'"))


def downgrade() -> None:
    op.drop_index("ix_case_summaries_next_deadline", "case_summaries")
    op.drop_index("ix_case_summaries_requested_by", "case_summaries")
    with op.batch_alter_table("case_summaries") as batch:
        batch.drop_column("awaiting_approval")
        batch.drop_column("requested_by")
    for table in ("case_figures", "council_summaries", "case_summaries"):
        op.execute(sa.text(f"DELETE FROM {table}"))
    op.execute(sa.text("UPDATE projections SET position = 0, problem = NULL "
                       "WHERE name = 'read_models'"))
