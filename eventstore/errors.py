"""Typed failures of the store, each naming the case and what to do about it."""

from __future__ import annotations


class StoreError(Exception):
    pass


class VersionConflict(StoreError):
    """Another event already holds a version this append expected to be free."""

    def __init__(self, case_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"case {case_id}: expected to append after version {expected_version}, "
            f"but the case is at version {actual_version}; reload the case and try again"
        )
        self.case_id = case_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class EventIdConflict(StoreError):
    """An event id is already stored with different content: ids must name one event only."""

    def __init__(self, event_id: str, case_id: str, version: int) -> None:
        super().__init__(
            f"event {event_id} is already stored as case {case_id} version {version} "
            "with different content"
        )
        self.event_id = event_id
        self.case_id = case_id
        self.version = version


class InvalidEvent(StoreError):
    """An event the store refuses before writing anything (bad id, float, naive time...)."""


class UnsupportedDatabase(StoreError, ValueError):
    """CASES_DATABASE_URL names a database the store does not run on (only SQLite and
    PostgreSQL)."""

    def __init__(self, scheme: str) -> None:
        super().__init__(
            f"CASES_DATABASE_URL names a {scheme!r} database, which the store does not run on: "
            "use sqlite:///PATH or postgresql://USER@HOST/DATABASE; nothing was recorded")


def missing_table(error: Exception) -> bool:
    """Whether a database error says a table does not exist (a store not migrated yet, which
    reads answer as empty), rather than that the database failed (which must be raised, and
    retried: an outage is never "nothing imported")."""
    original = getattr(error, "orig", None) or error
    return (getattr(original, "sqlstate", None) == "42P01"  # PostgreSQL's undefined_table
            or "no such table" in str(original).lower())
