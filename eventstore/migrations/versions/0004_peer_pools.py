"""The peer pool: versions that are never edited, so a past selection can be re-run exactly.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("peer_pools", "peers")


def upgrade() -> None:
    op.create_table(
        "peer_pools",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("peer_count", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_peer_pools_digest", "peer_pools", ["digest"])
    op.create_table(
        "peers",
        sa.Column("pool_version", sa.Integer, sa.ForeignKey("peer_pools.version"),
                  primary_key=True),
        sa.Column("peer_id", sa.String(200), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    # A pool an auditor re-runs a selection on must be the pool it ran on: no UPDATE, no DELETE.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION peer_pools_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'peer pools are never edited: % on % refused', TG_OP,
                    TG_TABLE_NAME;
            END $$;
            """
        )
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION peer_pools_are_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION peer_pools_are_append_only()")
    else:
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON "
                    f"{table} BEGIN SELECT RAISE(ABORT, 'peer pools are never edited: "
                    f"{operation} on {table} refused'); END"
                )


def downgrade() -> None:
    op.drop_table("peers")
    op.drop_table("peer_pools")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS peer_pools_are_append_only()")
