"""The tables, as SQLAlchemy Core metadata. Alembic migrations create them; this describes them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""SQLite only autoincrements an INTEGER PRIMARY KEY, so the position is INTEGER there."""

events = sa.Table(
    "events",
    metadata,
    sa.Column("position", Position, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("case_id", "version", name="uq_events_case_version"),
    sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    sa.CheckConstraint("version >= 1", name="ck_events_version_positive"),
    sqlite_autoincrement=True,
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", Position, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("case_id", sa.String(100), nullable=False),
    sa.Column("recipient", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("notice", sa.JSON, nullable=True),
    sa.UniqueConstraint("event_id", "recipient", name="uq_outbox_event_recipient"),
)
"""Notices to send, one per event and recipient; a row exists if and only if its event does,
and is never edited (its delivery is in `deliveries`). `notice` is `domain.notices.Notice`'s
facts; None on rows older than migration 0007, which carry only the recipient phrase."""

councils = sa.Table(
    "councils",
    metadata,
    sa.Column("gss_code", sa.String(9), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
)
"""Reference data, not history: a council's row is its register entry, replaced on import."""

peer_pools = sa.Table(
    "peer_pools",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("peer_count", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sealed_digest", sa.String(64), nullable=True),
    sqlite_autoincrement=True,
)
"""One row per imported pool, never edited: the highest version is the pool in use. The
digest is not unique: importing pool A, then B, then A again makes A current as version 3.
`digest` is what selections record; `sealed_digest` is `sealed_pool_digest` of its `peers`
rows, the same for a pool imported since migration 0006, and for an older one recorded by
that migration after checking `digest` (None if the rows no longer matched it then)."""

peers = sa.Table(
    "peers",
    metadata,
    sa.Column("pool_version", sa.Integer, sa.ForeignKey("peer_pools.version"),
              primary_key=True),
    sa.Column("peer_id", sa.String(200), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
)
"""Every peer of every pool version, sealed (`domain.peer_register.sealed_row`): every field
but the personal ones, and their salted hash. Never edited."""

peer_personal = sa.Table(
    "peer_personal",
    metadata,
    sa.Column("pool_version", sa.Integer, primary_key=True),
    sa.Column("peer_id", sa.String(200), primary_key=True),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.ForeignKeyConstraint(["pool_version", "peer_id"], ["peers.pool_version", "peers.peer_id"],
                            name="fk_peer_personal_peer"),
)
"""A peer's personal data in one pool version (`domain.peer_register.personal_data`) and the
salt of its hash; never edited, deleted to erase it (`eventstore.peers.erase_peer`)."""

peer_erasures = sa.Table(
    "peer_erasures",
    metadata,
    sa.Column("id", Position, primary_key=True, autoincrement=True),
    sa.Column("pool_version", sa.Integer, sa.ForeignKey("peer_pools.version"), nullable=False),
    sa.Column("peer_id", sa.String(200), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)
"""Each erasure of a peer's personal data from a pool version: when and why; never edited."""

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("council", sa.String(9), nullable=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)
"""The people who sign in: a role each (a council user bound to one council); an argon2 hash
of the password of a local account (None for token-only and single-sign-on users)."""

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(120), sa.ForeignKey("users.name"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("label", sa.String(200), nullable=False),
)
"""Bearer tokens, by the SHA-256 of the token (the token itself is shown once, never kept)."""

contact_imports = sa.Table(
    "contact_imports",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("imported_by", sa.String(200), nullable=False),
    sa.Column("contact_count", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)
"""One row per imported contacts file, never edited: the highest version is in force."""

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("version", sa.Integer, sa.ForeignKey("contact_imports.version"),
              primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(60), nullable=False),
    sa.Column("role", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Index("ix_contacts_version_scope_role", "version", "scope", "role"),
)
"""The people of each contacts version, by the file's row: a council's GSS code or
`lga:REGION`, a role, a name and an address."""

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("outbox_id", Position, sa.ForeignKey("outbox.id"), primary_key=True),
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
    sa.Index("ix_deliveries_status_next", "status", "next_attempt_at"),
)
"""The relay's record of each outbox notice: `pending` (waiting, or retrying after a
transient failure at `next_attempt_at`), `sent`, `undeliverable` (nobody to send it to, or
refused by the server: `sent_to` is who was told instead, if anyone) or `failed`. A claim
(`claimed_until`, `claimed_by`) keeps two relays from sending the same notice at once."""

projections = sa.Table(
    "projections",
    metadata,
    sa.Column("name", sa.String(60), primary_key=True),
    sa.Column("position", Position, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("problem", sa.Text, nullable=True),
)
"""Each projection's position (the last event applied, in position order) and, if it stopped
on a gap or a broken link in the events, why; changed in the transaction of its rows."""

case_summaries = sa.Table(
    "case_summaries",
    metadata,
    sa.Column("case_id", sa.String(100), primary_key=True),
    sa.Column("council", sa.String(9), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("stage", sa.String(40), nullable=False, index=True),
    sa.Column("requested_on", sa.Date, nullable=True),
    sa.Column("visit_started_on", sa.Date, nullable=True),
    sa.Column("visit_ended_on", sa.Date, nullable=True),
    sa.Column("report_final_on", sa.Date, nullable=True),
    sa.Column("report_published_on", sa.Date, nullable=True),
    sa.Column("action_plan_published_on", sa.Date, nullable=True),
    sa.Column("progress_review_on", sa.Date, nullable=True),
    sa.Column("progress_review_published_on", sa.Date, nullable=True),
    sa.Column("report_url", sa.String(510), nullable=True),
    sa.Column("action_plan_url", sa.String(510), nullable=True),
    sa.Column("progress_review_url", sa.String(510), nullable=True),
    sa.Column("next_deadline", sa.String(40), nullable=True),
    sa.Column("next_deadline_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("escalation_level", sa.Integer, nullable=False),
    sa.Column("imported", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("last_position", Position, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=True, index=True),
    sa.Column("awaiting_approval", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_case_summaries_next_deadline", "next_deadline_at", "case_id"),
)
"""Read model: one row per case, its state as the fold of its events so far."""

council_summaries = sa.Table(
    "council_summaries",
    metadata,
    sa.Column("gss_code", sa.String(9), primary_key=True),
    sa.Column("last_case_id", sa.String(100), nullable=False),
    sa.Column("visit_ended_on", sa.Date, nullable=False),
    sa.Column("report_due_on", sa.Date, nullable=False),
    sa.Column("report_published_on", sa.Date, nullable=True),
    sa.Column("action_plan_due_on", sa.Date, nullable=False),
    sa.Column("action_plan_published_on", sa.Date, nullable=True),
    sa.Column("progress_review_on", sa.Date, nullable=True),
    sa.Column("progress_review_published_on", sa.Date, nullable=True),
    sa.Column("report_url", sa.String(510), nullable=True),
    sa.Column("action_plan_url", sa.String(510), nullable=True),
    sa.Column("progress_review_url", sa.String(510), nullable=True),
    sa.Column("next_due_on", sa.Date, nullable=False),
    sa.Column("corporate_challenges", sa.Integer, nullable=False),
)
"""Read model: each council's last corporate peer challenge (by its visit's last day)."""

case_figures = sa.Table(
    "case_figures",
    metadata,
    sa.Column("case_id", sa.String(100), primary_key=True),
    sa.Column("council", sa.String(9), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("visit_ended_on", sa.Date, nullable=True, index=True),
    sa.Column("report_published_on", sa.Date, nullable=True, index=True),
    sa.Column("action_plan_published_on", sa.Date, nullable=True, index=True),
    sa.Column("escalations_from", sa.Date, nullable=True),
    sa.Column("escalations_to", sa.Date, nullable=True),
    sa.Index("ix_case_figures_escalations", "escalations_from", "escalations_to"),
)
"""Read model: each case's facts for the programme's figures (domain.figures.CaseFacts), with
the dates that place them in a period (visit, publications, the span of its escalations)
as indexed columns, so a period's figures read only the cases they can count."""
