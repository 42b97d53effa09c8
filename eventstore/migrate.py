"""Bring a database's schema to the newest migration; safe to run on every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


MIGRATION_LOCK = 0x63617365
"""PostgreSQL advisory lock key ("case") held while migrating."""


def upgrade(engine: Engine) -> None:
    """One migrator at a time: a worker and a `cases` command started together on a fresh
    database would otherwise both read "no tables yet" and both try to create them. SQLite
    takes the write lock at BEGIN (the other waits out its busy timeout, then finds the schema
    current); PostgreSQL takes an advisory lock for the transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection, \
            connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
