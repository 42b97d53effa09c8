"""Read models: where each publication is (the public register links to the council's own
report, action plan and progress review report).

Adds the three addresses to `case_summaries` and `council_summaries`, and sends the read
models back to position 0 with their rows dropped, so the workers project every event again
and fill them in (the read models are derived: nothing is lost).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ADDRESSES = ("report_url", "action_plan_url", "progress_review_url")


def upgrade() -> None:
    for table in ("case_summaries", "council_summaries"):
        with op.batch_alter_table(table) as batch:
            for column in _ADDRESSES:
                batch.add_column(sa.Column(column, sa.String(510), nullable=True))
    for table in ("case_figures", "council_summaries", "case_summaries"):
        op.execute(sa.text(f"DELETE FROM {table}"))
    op.execute(sa.text("UPDATE projections SET position = 0, problem = NULL "
                       "WHERE name = 'read_models'"))


def downgrade() -> None:
    for table in ("council_summaries", "case_summaries"):
        with op.batch_alter_table(table) as batch:
            for column in _ADDRESSES:
                batch.drop_column(column)
