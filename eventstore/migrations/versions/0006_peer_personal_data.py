"""Peers' personal data held apart from the pool, so it can be erased on request.

Each pool row keeps every field the selection rules read but the personal ones (name,
political group, declared interests), which move to `peer_personal` with a random salt; the
row keeps their salted hash (`personal_sha256`), and the pool's `sealed_digest` covers the rows.
Erasing deletes the `peer_personal` row, recorded in `peer_erasures`; the pool rows and both
digests stay as they were, so every pool and every selection still verifies.

Pools imported before this migration are sealed here, once: each pool's import digest is
checked against its rows first (a pool that no longer matched gets no `sealed_digest`, so it
still refuses to load), then its rows are rewritten sealed. That is the one time pool rows are
rewritten; the triggers that refuse it are lifted for it and put back.

The hash rule is written out here rather than imported, so that this migration does what it
did whatever the code becomes (`domain.peer_register.personal_sha256` is the same rule).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PERSONAL_FIELDS = ("name", "political_group", "declared_interests")

_pools = sa.table("peer_pools", sa.column("version", sa.Integer),
                  sa.column("digest", sa.String), sa.column("sealed_digest", sa.String))
_peers = sa.table("peers", sa.column("pool_version", sa.Integer),
                  sa.column("peer_id", sa.String), sa.column("data", sa.JSON))
_personal = sa.table("peer_personal", sa.column("pool_version", sa.Integer),
                     sa.column("peer_id", sa.String), sa.column("salt", sa.String),
                     sa.column("data", sa.JSON))

_SQLITE_POOL_TRIGGERS = {
    table: [f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'peer pools are never edited: {operation} on {table} "
            f"refused'); END" for operation in ("UPDATE", "DELETE")]
    for table in ("peer_pools", "peers", "peer_erasures")
}
"""Migration 0004's triggers on the pool tables (and the same on the erasure record)."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _digest(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(_canonical(sorted(rows, key=lambda r: str(r["peer_id"])))).hexdigest()


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("peer_pools", sa.Column("sealed_digest", sa.String(64), nullable=True))
    op.create_table(
        "peer_personal",
        sa.Column("pool_version", sa.Integer, primary_key=True),
        sa.Column("peer_id", sa.String(200), primary_key=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["pool_version", "peer_id"],
                                ["peers.pool_version", "peers.peer_id"],
                                name="fk_peer_personal_peer"),
    )
    op.create_table(
        "peer_erasures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("pool_version", sa.Integer, sa.ForeignKey("peer_pools.version"),
                  nullable=False),
        sa.Column("peer_id", sa.String(200), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_peer_erasures_peer", "peer_erasures", ["pool_version", "peer_id"])
    _guard_new_tables(postgres)
    _seal_existing_pools(postgres)


def _guard_new_tables(postgres: bool) -> None:
    """`peer_personal` rows are never edited and go only with a record of their erasure;
    `peer_erasures` rows are never edited or removed."""
    refused = ("personal data of peers is never edited, only erased (`cases peers erase`)")
    unrecorded = ("personal data of a peer is erased only with a record of the erasure "
                  "(`cases peers erase`)")
    if postgres:
        op.execute(f"""
            CREATE FUNCTION peer_personal_is_never_edited() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{refused}: % on % refused', TG_OP, TG_TABLE_NAME;
            END $$;
            """)
        op.execute(f"""
            CREATE FUNCTION peer_personal_erased_with_a_record() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM peer_erasures e WHERE e.pool_version =
                               OLD.pool_version AND e.peer_id = OLD.peer_id) THEN
                    RAISE EXCEPTION '{unrecorded}: DELETE of peer % refused', OLD.peer_id;
                END IF;
                RETURN OLD;
            END $$;
            """)
        op.execute("CREATE TRIGGER peer_personal_no_update BEFORE UPDATE ON peer_personal "
                   "FOR EACH ROW EXECUTE FUNCTION peer_personal_is_never_edited()")
        op.execute("CREATE TRIGGER peer_personal_no_truncate BEFORE TRUNCATE ON peer_personal "
                   "FOR EACH STATEMENT EXECUTE FUNCTION peer_personal_is_never_edited()")
        op.execute("CREATE TRIGGER peer_personal_erased_with_a_record BEFORE DELETE ON "
                   "peer_personal FOR EACH ROW EXECUTE FUNCTION "
                   "peer_personal_erased_with_a_record()")
        op.execute("CREATE TRIGGER peer_erasures_append_only BEFORE UPDATE OR DELETE ON "
                   "peer_erasures FOR EACH ROW EXECUTE FUNCTION peer_pools_are_append_only()")
        op.execute("CREATE TRIGGER peer_erasures_no_truncate BEFORE TRUNCATE ON peer_erasures "
                   "FOR EACH STATEMENT EXECUTE FUNCTION peer_pools_are_append_only()")
    else:
        op.execute("CREATE TRIGGER peer_personal_no_update BEFORE UPDATE ON peer_personal "
                   f"BEGIN SELECT RAISE(ABORT, '{refused}: UPDATE on peer_personal refused'); "
                   "END")
        op.execute("CREATE TRIGGER peer_personal_erased_with_a_record BEFORE DELETE ON "
                   "peer_personal WHEN NOT EXISTS (SELECT 1 FROM peer_erasures e WHERE "
                   "e.pool_version = OLD.pool_version AND e.peer_id = OLD.peer_id) "
                   f"BEGIN SELECT RAISE(ABORT, '{unrecorded}: DELETE refused'); END")
        for statement in _SQLITE_POOL_TRIGGERS["peer_erasures"]:
            op.execute(statement)


def _lift_pool_guards(postgres: bool) -> None:
    for table in ("peer_pools", "peers"):
        if postgres:
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        else:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{operation}")


def _restore_pool_guards(postgres: bool) -> None:
    for table in ("peer_pools", "peers"):
        if postgres:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        else:
            for statement in _SQLITE_POOL_TRIGGERS[table]:
                op.execute(statement)


def _seal_existing_pools(postgres: bool) -> None:
    bind = op.get_bind()
    pools = bind.execute(sa.select(_pools.c.version, _pools.c.digest)
                         .order_by(_pools.c.version)).all()
    if not pools:
        return
    _lift_pool_guards(postgres)
    for version, digest in pools:
        rows = [dict(row.data) for row in bind.execute(
            sa.select(_peers.c.data).where(_peers.c.pool_version == version))]
        intact = _digest(rows) == digest
        sealed_rows = []
        for row in rows:
            salt = secrets.token_hex(32)
            personal = {field: row.get(field) for field in PERSONAL_FIELDS}
            if personal["declared_interests"] is None:
                personal["declared_interests"] = []
            sealed = {key: value for key, value in row.items() if key not in PERSONAL_FIELDS}
            sealed["personal_sha256"] = hashlib.sha256(_canonical(
                {**personal, "peer_id": row["peer_id"], "salt": salt})).hexdigest()
            sealed_rows.append(sealed)
            bind.execute(_peers.update().where(_peers.c.pool_version == version)
                         .where(_peers.c.peer_id == row["peer_id"]).values(data=sealed))
            bind.execute(_personal.insert().values(pool_version=version,
                                                   peer_id=row["peer_id"], salt=salt,
                                                   data=personal))
        bind.execute(_pools.update().where(_pools.c.version == version)
                     .values(sealed_digest=_digest(sealed_rows) if intact else None))
    _restore_pool_guards(postgres)


def downgrade() -> None:
    """Back to pool rows that hold the personal data; refused once anything was erased (the
    data is gone, and 0004's pools cannot hold a peer without it)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    bind = op.get_bind()
    erased = bind.exec_driver_sql("SELECT count(*) FROM peer_erasures").scalar_one()
    if erased:
        raise RuntimeError(f"cannot downgrade below 0006: {erased} erasures of personal data "
                           "are recorded, and the pools before 0006 cannot hold an erased peer")
    personal = {(row.pool_version, row.peer_id): dict(row.data)
                for row in bind.execute(sa.select(_personal))}
    _lift_pool_guards(postgres)
    for row in bind.execute(sa.select(_peers)).all():
        data = {key: value for key, value in dict(row.data).items() if key != "personal_sha256"}
        data.update(personal[(row.pool_version, row.peer_id)])
        bind.execute(_peers.update().where(_peers.c.pool_version == row.pool_version)
                     .where(_peers.c.peer_id == row.peer_id).values(data=data))
    _restore_pool_guards(postgres)
    op.drop_table("peer_personal")
    op.drop_index("ix_peer_erasures_peer", "peer_erasures")
    op.drop_table("peer_erasures")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS peer_personal_is_never_edited()")
        op.execute("DROP FUNCTION IF EXISTS peer_personal_erased_with_a_record()")
        op.drop_column("peer_pools", "sealed_digest")
    else:
        op.execute("ALTER TABLE peer_pools DROP COLUMN sealed_digest")
