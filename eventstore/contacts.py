"""The contacts in the database: whole versions, never edited, the highest in force, so a
notice's delivery can say which version it was addressed from (`deliveries.contacts_version`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from domain.contacts import Contact, ContactBook
from eventstore.errors import StoreError, missing_table
from eventstore.records import as_utc
from eventstore.schema import contact_imports, contacts
from eventstore.store import EventStore

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NOT_MIGRATED = (sa.exc.OperationalError, sa.exc.ProgrammingError)
"""What reading a table that does not exist yet raises (and what a database that is down, or
a role without the grant, raises too: `missing_table` tells them apart)."""


class UnknownContactsVersion(StoreError):
    """No contacts import has this version."""

    def __init__(self, version: int, newest: int | None) -> None:
        known = f"the newest is {newest}" if newest else "no contacts have been imported yet"
        super().__init__(f"no contacts version {version} ({known}); `cases contacts versions` "
                         "lists them")
        self.version = version


def import_contacts(store: EventStore, imported: Sequence[Contact], *, file_sha256: str,
                    source: str, imported_by: str) -> int:
    """Store these contacts as a new version, in force from now, in one transaction; returns
    its version. Importing the same file again makes a new version too: each import is a
    record of who put which file in force, and when. The store must be migrated."""
    if not imported:
        raise ValueError("a contacts version holds at least one contact")
    if not _SHA256.match(file_sha256):
        raise ValueError(f"file_sha256 {file_sha256!r}: expected 64 lower-case hex digits")
    with store.engine.begin() as conn:
        version: int = conn.execute(
            contact_imports.insert().returning(contact_imports.c.version),
            {"file_sha256": file_sha256, "source": source, "imported_by": imported_by,
             "contact_count": len(imported), "imported_at": datetime.now(UTC)}).scalar_one()
        conn.execute(contacts.insert(), [
            {"version": version, "row": row, "scope": contact.scope,
             "role": contact.role.value, "name": contact.name, "email": contact.email}
            for row, contact in enumerate(imported, start=1)])
    return version


def contact_book(store: EventStore, version: int | None = None) -> ContactBook:
    """The contacts of `version`, or of the version in force when None: an empty book
    (version None) when nothing has been imported, or the store is not migrated yet. Raises
    UnknownContactsVersion when `version` was never imported."""
    with store.engine.connect() as conn:
        try:
            newest = conn.execute(sa.select(sa.func.max(contact_imports.c.version))).scalar()
        except _NOT_MIGRATED as failure:
            if not missing_table(failure):  # an outage is never "nobody to tell"
                raise
            newest = None
        if version is None and newest is None:
            return ContactBook()
        chosen = newest if version is None else version
        if version is not None and (newest is None or not conn.execute(
                sa.select(contact_imports.c.version)
                .where(contact_imports.c.version == version)).first()):
            raise UnknownContactsVersion(version, newest)
        rows = conn.execute(sa.select(contacts.c.scope, contacts.c.role, contacts.c.name,
                                      contacts.c.email)
                            .where(contacts.c.version == chosen)
                            .order_by(contacts.c.row)).all()
    return ContactBook(version=chosen, contacts=tuple(
        Contact(scope=row.scope, role=row.role, name=row.name, email=row.email)
        for row in rows))


def version_in_force(store: EventStore) -> int | None:
    """The contacts version in force (None before the first import): one indexed read, so a
    relay can keep its book until an import replaces it."""
    with store.engine.connect() as conn:
        try:
            newest: int | None = conn.execute(
                sa.select(sa.func.max(contact_imports.c.version))).scalar()
        except _NOT_MIGRATED as failure:
            if not missing_table(failure):  # an outage is never "nobody to tell"
                raise
            return None
    return newest


def contact_versions(store: EventStore) -> list[dict[str, Any]]:
    """Every contacts import, oldest first (the last is in force): version, file_sha256,
    source, imported_by, contact_count and imported_at (UTC). Empty before the first."""
    with store.engine.connect() as conn:
        try:
            rows = conn.execute(sa.select(contact_imports)
                                .order_by(contact_imports.c.version)).all()
        except _NOT_MIGRATED as failure:
            if not missing_table(failure):  # an outage is never "nobody to tell"
                raise
            return []
    return [{"version": row.version, "file_sha256": row.file_sha256, "source": row.source,
             "imported_by": row.imported_by, "contact_count": row.contact_count,
             "imported_at": as_utc(row.imported_at)} for row in rows]
