"""Bring a database's schema to the newest migration (`cases db upgrade`), and tell where it
stands (`cases db current`): workers and the API check, and never migrate by themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

# alembic is imported where it is used: most commands (an auditor's report, a list) never
# migrate, and it costs a tenth of a second to start.

MIGRATIONS = Path(__file__).with_name("migrations")


MIGRATION_LOCK = 0x63617365
"""PostgreSQL advisory lock key ("case") held while migrating."""


class SchemaNotCurrent(RuntimeError):
    """The store's schema is not the one this version of the engine needs (exit 1): the
    message names the migration it is at, the one needed, and the command that fixes it."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a store's schema stands: `current` is None for a database with no tables."""

    current: str | None
    newest: str
    known: bool
    """False when `current` is a migration this version does not have (a newer engine ran)."""

    @property
    def is_newest(self) -> bool:
        return self.current == self.newest


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def status(engine: Engine) -> SchemaStatus:
    """Read the migration the database is at (one SELECT), beside the newest one we have."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    newest = scripts.get_current_head()
    assert newest is not None
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    known = current is None or current in {s.revision for s in scripts.walk_revisions()}
    return SchemaStatus(current, newest, known)


def require_newest(engine: Engine, where: str) -> None:
    """Refuse to serve on a schema other than the newest, saying what to run."""
    found = status(engine)
    if found.is_newest:
        return
    if found.current is None:
        raise SchemaNotCurrent(f"the store at {where} has no tables yet: run `cases db upgrade` "
                               "(as the database's owner) first; nothing was recorded")
    if not found.known:
        raise SchemaNotCurrent(
            f"the store at {where} is at migration {found.current}, newer than this version "
            f"of the engine knows ({found.newest}): run the newer version; nothing was recorded")
    raise SchemaNotCurrent(
        f"the store at {where} is at migration {found.current}, and this version needs "
        f"{found.newest}: run `cases db upgrade` (as the database's owner), then start again; "
        "nothing was recorded")


def upgrade(engine: Engine) -> None:
    """One migrator at a time: a worker and a `cases` command started together on a fresh
    database would otherwise both read "no tables yet" and both try to create them. SQLite
    takes the write lock at BEGIN (the other waits out its busy timeout, then finds the schema
    current); PostgreSQL takes an advisory lock for the transaction."""
    from alembic import command

    config = _config()
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection, \
            connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
