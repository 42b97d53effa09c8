"""Notices that reach people: contacts by council or LGA region and role, and each outbox
notice's delivery.

`contact_imports` holds one row per imported contacts file (a version), never edited;
`contacts` the people of each version. `deliveries` is the relay's record of each outbox
notice: claimed, sent (to whom, the SMTP server's answer), undeliverable (why, and who was
told instead) or failed. The outbox gains `notice`, the structured facts its emails are
written from (None on rows written before this migration, which the relay reads from their
recipient phrase), and loses `sent_at`, which nothing ever set: delivery lives in
`deliveries`, so the outbox stays append-only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contact_imports",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("contact_count", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "contacts",
        sa.Column("version", sa.Integer, sa.ForeignKey("contact_imports.version"),
                  primary_key=True),
        sa.Column("row", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(60), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
    )
    op.create_index("ix_contacts_version_scope_role", "contacts", ["version", "scope", "role"])
    op.create_table(
        "deliveries",
        sa.Column("outbox_id", _ID, sa.ForeignKey("outbox.id"), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("sent_to", sa.Text, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("problem", sa.Text, nullable=True),
        sa.Column("contacts_version", sa.Integer, nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("notice", sa.JSON, nullable=True))
        outbox.drop_index("ix_outbox_unsent")
        outbox.drop_column("sent_at")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        outbox.drop_column("notice")
        outbox.create_index("ix_outbox_unsent", ["sent_at", "id"])
    op.drop_table("deliveries")
    op.drop_table("contacts")
    op.drop_table("contact_imports")
