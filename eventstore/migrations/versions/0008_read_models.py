"""Read models: what `cases list`, `councils due` and `report annual` read, projected from the
events in position order (eventstore/projections.py).

`projections` holds each projection's position (the last event applied) and, if it stopped
on a gap or a broken link in the events, why. `case_summaries` is one row per case (its
folded state, stage, business dates, next deadline, escalation level, and the version and
hash it has reached, which the next event must follow); `council_summaries` one row per
council with a corporate peer challenge; `case_figures` one row per case with the facts the
programme's figures count (domain.figures.CaseFacts). Every row is derived: dropping them
all and projecting again gives the same rows (`cases projections rebuild`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    positions = op.create_table(
        "projections",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("position", _POSITION, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("problem", sa.Text, nullable=True),
    )
    # The row each projector locks: made here, once, so that two never race to make it.
    op.bulk_insert(positions, [{"name": "read_models", "position": 0,
                                "updated_at": datetime.now(UTC), "problem": None}])
    op.create_table(
        "case_summaries",
        sa.Column("case_id", sa.String(100), primary_key=True),
        sa.Column("council", sa.String(9), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("requested_on", sa.Date, nullable=True),
        sa.Column("visit_started_on", sa.Date, nullable=True),
        sa.Column("visit_ended_on", sa.Date, nullable=True),
        sa.Column("report_final_on", sa.Date, nullable=True),
        sa.Column("report_published_on", sa.Date, nullable=True),
        sa.Column("action_plan_published_on", sa.Date, nullable=True),
        sa.Column("progress_review_on", sa.Date, nullable=True),
        sa.Column("progress_review_published_on", sa.Date, nullable=True),
        sa.Column("next_deadline", sa.String(40), nullable=True),
        sa.Column("next_deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer, nullable=False),
        sa.Column("imported", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("last_position", _POSITION, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
    )
    op.create_index("ix_case_summaries_council", "case_summaries", ["council"])
    op.create_index("ix_case_summaries_stage", "case_summaries", ["stage"])
    op.create_table(
        "council_summaries",
        sa.Column("gss_code", sa.String(9), primary_key=True),
        sa.Column("last_case_id", sa.String(100), nullable=False),
        sa.Column("visit_ended_on", sa.Date, nullable=False),
        sa.Column("report_due_on", sa.Date, nullable=False),
        sa.Column("report_published_on", sa.Date, nullable=True),
        sa.Column("action_plan_due_on", sa.Date, nullable=False),
        sa.Column("action_plan_published_on", sa.Date, nullable=True),
        sa.Column("progress_review_on", sa.Date, nullable=True),
        sa.Column("progress_review_published_on", sa.Date, nullable=True),
        sa.Column("next_due_on", sa.Date, nullable=False),
        sa.Column("corporate_challenges", sa.Integer, nullable=False),
    )
    op.create_table(
        "case_figures",
        sa.Column("case_id", sa.String(100), primary_key=True),
        sa.Column("council", sa.String(9), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("case_figures", "council_summaries", "case_summaries", "projections"):
        op.drop_table(table)
