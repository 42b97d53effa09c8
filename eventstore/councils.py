"""The councils the engine knows: a handful built in, the rest imported from the register."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import sqlalchemy as sa

from domain.councils import BUILT_IN_COUNCILS, Council, register_digest
from eventstore.errors import missing_table
from eventstore.schema import councils
from eventstore.store import EventStore


def import_councils(store: EventStore, imported: Iterable[Council]) -> int:
    """Insert or replace these councils in one transaction; returns how many."""
    rows = [{"gss_code": c.gss_code, "data": c.model_dump(mode="json"),
             "imported_at": datetime.now(UTC)} for c in imported]
    with store.engine.begin() as conn:
        if rows:
            conn.execute(councils.delete().where(
                councils.c.gss_code.in_([r["gss_code"] for r in rows])))
            conn.execute(councils.insert(), rows)
    return len(rows)


_READ: dict[tuple[object, ...], dict[str, Council]] = {}
"""The register as last read, by database and the register's (row count, newest import):
pages read it on every view, and it changes only on import."""
_DIGESTS: dict[tuple[object, ...], str] = {}
"""`register_digest` of each register in `_READ`, by the same key."""


def known_councils(store: EventStore) -> dict[str, Council]:
    """Built-in councils, overridden and extended by the imported register. Read again only
    when the register has changed (one small query says whether it has)."""
    return dict(_known(store)[1])


def councils_as_of(store: EventStore) -> tuple[tuple[object, ...], Mapping[str, Council]]:
    """The councils, as `known_councils`, with a key that changes whenever the register
    does (for what is worked out from them), in one query; the mapping is not to be
    changed."""
    return _known(store)


def known_register(store: EventStore) -> tuple[dict[str, Council], str]:
    """The councils, as `known_councils`, and their `register_digest`: the digest is worked
    out once per version of the register (it serialises every council, milliseconds a time)."""
    key, known = _known(store)
    digest = _DIGESTS.get(key)
    if digest is None:
        digest = register_digest(known)
        if len(_DIGESTS) > 16:
            _DIGESTS.clear()
        _DIGESTS[key] = digest
    return dict(known), digest


def _known(store: EventStore) -> tuple[tuple[object, ...], Mapping[str, Council]]:
    """(the register's version key, the councils as read for it): not to be changed."""
    try:
        with store.engine.connect() as conn:
            key = (store.engine.url.render_as_string(hide_password=True), *_version(conn))
            cached = _READ.get(key)
            if cached is not None:
                return key, cached
            known = dict(BUILT_IN_COUNCILS)
            for row in conn.execute(sa.select(councils.c.data)):
                council = Council.model_validate(row.data)
                known[council.gss_code] = council
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as failure:
        if not missing_table(failure):  # an outage, not "no register imported yet"
            raise
        return ("built in",), BUILT_IN_COUNCILS
    if len(_READ) > 16:
        _READ.clear()
    _READ[key] = known
    return key, known


def known_council(store: EventStore, gss_code: str) -> Council | None:
    """One council as `known_councils` would give it, read alone: opening a case needs only
    the council it is for, not the whole register (317 rows) each time."""
    try:
        with store.engine.connect() as conn:
            data = conn.execute(sa.select(councils.c.data)
                                .where(councils.c.gss_code == gss_code)).scalar_one_or_none()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as failure:
        if not missing_table(failure):  # an outage, not "no register imported yet"
            raise
        data = None
    if data is not None:
        return Council.model_validate(data)
    return BUILT_IN_COUNCILS.get(gss_code)


def register_version(store: EventStore) -> tuple[int, object]:
    """(rows, newest import) of the imported register: what changes when it is imported."""
    try:
        with store.engine.connect() as conn:
            return _version(conn)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as failure:
        if not missing_table(failure):
            raise
        return 0, None


def _version(conn: sa.Connection) -> tuple[int, object]:
    count, newest = conn.execute(sa.select(sa.func.count(),
                                           sa.func.max(councils.c.imported_at))).one()
    return int(count), newest
