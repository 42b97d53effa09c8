"""The event store: append (idempotent, optimistic, hash-chained) and reads.

One interface, one subclass per database. What differs is how appends are serialised:
PostgreSQL takes an advisory lock named after the table so that positions are handed out in
commit order; SQLite takes its single write lock up front (BEGIN IMMEDIATE). Everything else
is shared SQL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import IntegrityError

from eventstore import migrate
from eventstore.chain import GENESIS_HASH, canonical_json, event_hash
from eventstore.config import database_url, normalise_url
from eventstore.errors import EventIdConflict, InvalidEvent, UnsupportedDatabase, VersionConflict
from eventstore.group_commit import GroupCommit, PendingAppend
from eventstore.migrate import SchemaStatus
from eventstore.pool_ping import ping_when_idle
from eventstore.records import NewEvent, OutboxMessage, StoredEvent, as_utc
from eventstore.schema import events, outbox
from eventstore.validation import check_case_id, check_new_event

_HEAD = (sa.select(events.c.version, events.c.hash)
         .where(events.c.case_id == sa.bindparam("case_id"))
         .order_by(events.c.version.desc()).limit(1))
"""Built once: building the statement and its cache key per call cost more than running it."""
_INSERT_OUTBOX = outbox.insert()
_EVENT_COLUMNS = ("case_id", "version", "event_id", "type", "schema_version", "occurred_at",
                  "actor", "payload", "prev_hash", "hash")
_OUTBOX_COLUMNS = ("event_id", "case_id", "recipient", "subject", "body", "created_at", "notice")
PG_APPEND_LOCK_KEY = 0x65766E74
"""The first key of PostgreSQL's append lock ("evnt"); the second is the events table's oid."""
_PG_HEAD = "SELECT version, hash FROM events WHERE case_id = %s ORDER BY version DESC LIMIT 1"
_SQLITE_HEAD = _PG_HEAD.replace("%s", "?")
_PG_LOCK = f"SELECT pg_advisory_xact_lock({PG_APPEND_LOCK_KEY}, 'events'::regclass::oid::int4)"
"""PostgreSQL's append statements, sent by psycopg itself (see PostgresEventStore). The lock
is advisory, not `LOCK TABLE … IN EXCLUSIVE MODE`, because the application's database role may
only INSERT and SELECT, and PostgreSQL grants a table lock that strong only to a role that
may UPDATE, DELETE or TRUNCATE. Keyed by the table's oid, as resolved by the search path like
the insert itself, it serialises the appends to one table and no others (a store in another
schema of the same database does not wait); the migrations' lock uses the one-key form, so
the two never meet."""
_PG_LINKED = ("%s = 1 OR EXISTS (SELECT FROM events WHERE case_id = %s AND version = %s "
              "AND hash = %s)")
"""An event is inserted only if it is its case's first or the event it links to (the version
before, with the hash it names as prev_hash) is stored: the chain is checked by the database."""
_PG_OUTBOX_LINKED = "EXISTS (SELECT FROM events WHERE event_id = %s)"
"""A notification is inserted only if its event was, in the same transaction."""


class EventStore:
    """The store over one database. Use `open_store(url)` to get the right subclass."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- how each database serialises appends -------------------------------------------

    def _append_connection(self) -> Connection:
        return self.engine.connect()

    def _head_for_append(self, conn: Connection, case_id: str) -> tuple[int, str]:
        """The case's head, read as the append transaction's first statement."""
        raise NotImplementedError

    def _insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute(_INSERT_OUTBOX, rows)

    def _lock_and_insert(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Take the database's append lock, if it has one, and insert the rows; their positions,
        in order. The head read and the outbox rows come first, so the lock covers only the
        insert and the commit."""
        raise NotImplementedError

    # --- schema -----------------------------------------------------------------------

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def schema_status(self) -> SchemaStatus:
        return migrate.status(self.engine)

    def require_newest_schema(self) -> None:
        """Raise SchemaNotCurrent, saying what to run, unless the schema is the newest."""
        migrate.require_newest(self.engine, self.engine.url.render_as_string(hide_password=True))

    def dispose(self) -> None:
        self.engine.dispose()

    # --- append -----------------------------------------------------------------------

    def append(self, case_id: str, expected_version: int, new_events: Sequence[NewEvent],
               notifications: Sequence[OutboxMessage] = ()) -> list[StoredEvent]:
        """Append `new_events` as versions expected_version+1, +2, … of the case, atomically.

        `notifications` go into the outbox in the same transaction, so a notification is
        stored if and only if its event is. A retry of an append that already committed
        returns the stored events and writes nothing. Anything else at those versions
        raises VersionConflict.
        """
        check_case_id(case_id)
        for new in new_events:
            check_new_event(new)
        ids = {new.event_id for new in new_events}
        for message in notifications:
            if message.event_id not in ids:
                raise InvalidEvent(f"notification for {message.event_id}, not in this append")
        if not new_events:
            return []
        return self._write(PendingAppend(case_id, expected_version, new_events, notifications))

    def append_cases(self, appends: Sequence[tuple[str, int, Sequence[NewEvent]]]
                     ) -> list[list[StoredEvent]]:
        """Several cases' appends in one transaction: all of them, or (on any conflict or
        failure) none. Each is checked as `append` checks it; an append that already happened
        in full answers with its stored events and writes nothing. For imports of many cases
        at once (`cases import-history`)."""
        requests = []
        for case_id, expected_version, new_events in appends:
            check_case_id(case_id)
            for new in new_events:
                check_new_event(new)
            if new_events:
                requests.append(PendingAppend(case_id, expected_version, new_events, ()))
        if not requests:
            return []
        with self._append_connection() as conn, conn.begin():
            return [self._append_in(conn, request) for request in requests]

    def _write(self, request: PendingAppend) -> list[StoredEvent]:
        """How this database writes a checked append: here, in a transaction of its own."""
        return self._append_alone(request)

    def _append_alone(self, request: PendingAppend) -> list[StoredEvent]:
        """One append in a transaction of its own."""
        with self._append_connection() as conn:
            try:
                with conn.begin():
                    return self._append_in(conn, request)
            except IntegrityError:
                # The unique (case_id, version) and event id keep the chain whole: a writer
                # that took these versions after our head read (or a reused event id) ends
                # here, and is told apart from a retry of this very append.
                case_id, expected_version = request.case_id, request.expected_version
                with conn.begin():
                    already = self._already_stored(conn, case_id, expected_version,
                                                   request.new_events)
                    if already is not None:
                        return already
                    head_version, _ = self._head(conn, case_id)
                if head_version != expected_version:
                    raise VersionConflict(case_id, expected_version, head_version) from None
                raise

    def _append_in(self, conn: Connection, request: PendingAppend) -> list[StoredEvent]:
        """The append, inside the caller's open transaction. A conflict is raised, and a retry
        answered with the stored events, before anything is written."""
        case_id, expected_version = request.case_id, request.expected_version
        head_version, head_hash = self._head_for_append(conn, case_id)
        if head_version != expected_version:
            already = self._already_stored(conn, case_id, expected_version, request.new_events)
            if already is not None:
                return already
            raise VersionConflict(case_id, expected_version, head_version)
        rows = _chain(case_id, expected_version, head_hash, request.new_events)
        if request.notifications:
            self._insert_outbox(conn, _outbox_rows(case_id, rows, request.notifications))
        positions = self._lock_and_insert(conn, rows)
        return [StoredEvent(position=p, **row) for p, row in zip(positions, rows, strict=True)]

    def _already_stored(self, conn: Connection, case_id: str, expected_version: int,
                        new_events: Sequence[NewEvent]) -> list[StoredEvent] | None:
        """The stored events if this exact append already happened; None if none of it did."""
        ids = [e.event_id for e in new_events]
        found = {s.event_id: s for s in map(_stored,
                 conn.execute(sa.select(events).where(events.c.event_id.in_(ids))))}
        for offset, new in enumerate(new_events):
            stored = found.get(new.event_id)
            if stored is not None and not _same(stored, case_id, expected_version + offset + 1,
                                                new):
                raise EventIdConflict(new.event_id, stored.case_id, stored.version)
        return [found[i] for i in ids] if len(found) == len(ids) else None

    # --- reads ------------------------------------------------------------------------

    def head(self, case_id: str) -> tuple[int, str]:
        """(version, hash) of the case's newest event; (0, 64 zeros) for a case with none."""
        with self.engine.connect() as conn:
            return self._head(conn, case_id)

    @staticmethod
    def _head(conn: Connection, case_id: str) -> tuple[int, str]:
        row = conn.execute(_HEAD, {"case_id": case_id}).first()
        return (0, GENESIS_HASH) if row is None else (row.version, row.hash)

    def read_case(self, case_id: str, *, up_to_version: int | None = None,
                  as_of: datetime | None = None) -> list[StoredEvent]:
        """The case's events in version order: all, up to a version, or as they stood at a time."""
        query = sa.select(events).where(events.c.case_id == case_id)
        if up_to_version is not None:
            query = query.where(events.c.version <= up_to_version)
        if as_of is not None:
            query = query.where(events.c.occurred_at <= _utc_param(self.engine, as_of))
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query.order_by(events.c.version))]

    def read_after(self, position: int, limit: int = 1000) -> list[StoredEvent]:
        """Events of every case with a position after `position`, oldest first."""
        query = (sa.select(events).where(events.c.position > position)
                 .order_by(events.c.position).limit(limit))
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def iter_after(self, position: int = 0, batch_size: int = 1000) -> Iterator[StoredEvent]:
        """Every event after `position`, fetched in batches; the tail of a live store."""
        while True:
            batch = self.read_after(position, batch_size)
            yield from batch
            if len(batch) < batch_size:
                return
            position = batch[-1].position

    def case_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            query = sa.select(events.c.case_id).distinct().order_by(events.c.case_id)
            return list(conn.execute(query).scalars())

    def last_position(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0)))
                       .scalar_one())


class SqliteEventStore(EventStore):
    """SQLite: one writer at a time by design; BEGIN IMMEDIATE takes the write lock up front.

    Appends from the threads of one process (a worker's activities) queue on a lock of the
    process first: SQLite's own busy handler waits by sleeping, up to 100 ms a try, so a
    writer that arrives just after another may sleep long after the lock is free. The writer
    that gets it commits every append waiting by then in one transaction (group commit: one
    fsync for all of them). Other processes (a `cases` command beside the worker) still meet
    at SQLite's lock.

    A database file that does not exist yet is created here, empty and readable by its owner
    only (0600), before SQLite first opens it; SQLite gives the -wal, -shm and -journal files
    beside it the database's own mode, so they are 0600 too. An existing file's mode is left
    as it is, never changed silently: who else may read it is its owner's choice (a group
    shared with a backup job, say), and `chmod 600 cases.db*` makes it private."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        _create_owner_only(engine.url)
        self._group_commit = GroupCommit(self._commit_group)
        self._events_insert = _DriverInsert(events, _EVENT_COLUMNS, engine.dialect)
        self._outbox_insert = _DriverInsert(outbox, _OUTBOX_COLUMNS, engine.dialect)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)

    def _write(self, request: PendingAppend) -> list[StoredEvent]:
        return self._group_commit.append(request)

    def _commit_group(self, group: list[PendingAppend]) -> None:
        """Every waiting append in one transaction, each checked against its own head; a
        conflict or a retry is that append's answer alone. If an insert breaks a unique key
        part-way (an event id already used by another case), none of the group is kept and
        each is appended on its own. Any other failure (the database locked, full or gone) is
        every append's answer, as it would have been for each alone."""
        if len(group) == 1:
            group[0].settle_by(self._append_alone)
            return
        answers: list[tuple[PendingAppend, list[StoredEvent] | None, Exception | None]] = []
        try:
            with self._append_connection() as conn, conn.begin():
                for request in group:
                    try:
                        answers.append((request, self._append_in(conn, request), None))
                    except (VersionConflict, EventIdConflict) as refused:  # nothing written
                        answers.append((request, None, refused))
        except IntegrityError:
            for request in group:
                request.settle_by(self._append_alone)
            return
        for request, stored, conflict in answers:
            request.settle(stored, conflict)

    def _append_connection(self) -> Connection:
        return self.engine.connect().execution_options(sqlite_begin="IMMEDIATE")

    def _head_for_append(self, conn: Connection, case_id: str) -> tuple[int, str]:
        with _as_sqlalchemy_errors(_SQLITE_HEAD, sqlite3.Error):
            row = _sqlite3(conn).execute(_SQLITE_HEAD, (case_id,)).fetchone()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def _insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        insert = self._outbox_insert
        with _as_sqlalchemy_errors(insert.sql, sqlite3.Error):
            _sqlite3(conn).executemany(insert.sql, [insert.values(row) for row in rows])

    def _lock_and_insert(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """No lock to take: BEGIN IMMEDIATE took SQLite's. One `executemany`, no RETURNING
        (which SQLite would run row by row): under the write lock, AUTOINCREMENT gives a batch
        consecutive positions ending at the last. A single event (most appends) is one plain
        insert whose cursor knows its rowid."""
        insert, driver = self._events_insert, _sqlite3(conn)
        with _as_sqlalchemy_errors(insert.sql, sqlite3.Error):
            if len(rows) == 1:
                inserted = driver.execute(insert.sql, insert.values(rows[0])).lastrowid
                if inserted is not None:
                    return [int(inserted)]
            else:
                driver.executemany(insert.sql, [insert.values(row) for row in rows])
            last = int(driver.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))


class _DriverInsert:
    """An INSERT run by the database driver itself, its values made by SQLAlchemy's own bind
    processors for each column: the stored values are what SQLAlchemy would have written,
    without its per-statement work (which, in a loaded worker, cost more than the database's)."""

    def __init__(self, table: sa.Table, columns: Sequence[str], dialect: sa.Dialect,
                 returning: str | None = None, where: str | None = None) -> None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join([mark] * len(columns))
        self.sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
                    + (f"VALUES ({marks})" if where is None else f"SELECT {marks} WHERE {where}")
                    + (f" RETURNING {returning}" if returning else ""))
        self._columns = [(name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                         for name in columns]

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] if process is None else process(row[name])
                     for name, process in self._columns)


def _sqlite3(conn: Connection) -> sqlite3.Connection:
    """The append's own sqlite3 connection, inside the transaction SQLAlchemy began."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


@contextlib.contextmanager
def _as_sqlalchemy_errors(statement: str, driver_error: type[Exception]) -> Iterator[None]:
    """The driver's errors as SQLAlchemy's (IntegrityError, OperationalError, …), as the
    store's other statements raise them: the append tells a conflict from a retry by them."""
    try:
        yield
    except driver_error as failed:
        raise sa.exc.DBAPIError.instance(statement, None, failed, driver_error) from failed


SQLITE_BUSY_TIMEOUT_S = 30.0


def _create_owner_only(url: sa.URL) -> None:
    """Create the database file of `url`, empty and mode 0600, if there is none yet (see
    SqliteEventStore). An in-memory or read-only database, an existing file (or symlink), or a
    path that cannot be created is left to SQLite, which says what is wrong on first use."""
    name, query = url.database or "", url.query
    if name in ("", ":memory:") or query.get("mode") in ("memory", "ro"):
        return
    if name.startswith("file:") and query.get("uri") == "true":
        name = unquote(urlsplit(name).path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        os.close(os.open(name, flags, 0o600))
    except OSError:
        return


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, waiting out other connections' locks as busy_timeout would.

    Why not busy_timeout alone: while another connection holds the write lock of a database
    still in rollback mode (a `cases` command migrating a fresh store, BEGIN IMMEDIATE), SQLite
    refuses the switch at once with "database is locked", without calling its busy handler, so
    a worker and a command started together on a new store could fail to open it."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # an in-memory database stays "memory"
            return
        except sqlite3.OperationalError as refused:
            if "locked" not in str(refused) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")


class PostgresEventStore(EventStore):
    """PostgreSQL: positions come from a sequence, which hands them out in *start* order.

    A reader tailing positions could then skip an event whose transaction commits after a
    later position's. Taking the append lock (`_PG_LOCK`, a transaction-level advisory lock held
    until commit or rollback) before every append's insert makes appends commit one at a time,
    so position order is commit order. Nothing else waits for it (readers, vacuum, other
    table locks): an advisory lock conflicts only with itself. The price is that appends to
    different cases do not overlap while they hold it, which is why it is
    taken last: held for the insert and the commit, not for the head read and the outbox too
    (under load each round trip also waits for the worker's interpreter lock, and appends
    queued on this one lock).

    Most appends know the hash they chain to without reading it: the case's first (genesis),
    or the head this store itself last stored for the case (a worker appends each case it runs
    one action after another). Such an append is one pipeline, one round trip after the pool's
    pre-ping: BEGIN, the lock, each event inserted only if the event it links to is stored
    with that hash (`_PG_LINKED`), the outbox rows only if their event was, and COMMIT; the
    lock is then held for the server's work alone, never across a round trip.
    The remembered head is never trusted: the database checks every link, and the unique
    (case_id, version) refuses a version already taken. An append that inserts nothing (the
    head not as remembered) or breaks a unique key is tried again the long way below, which
    answers a retry or a conflict as before.

    The long way sends its statements in pipelines where one needs no answer before the next:
    BEGIN with the head read, the lock with the insert. With the pool's pre-ping, the outbox
    rows when there are notifications and the commit, that is four round trips (five).
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._events_insert = _DriverInsert(events, _EVENT_COLUMNS, engine.dialect,
                                            returning="position")
        self._linked_insert = _DriverInsert(events, _EVENT_COLUMNS, engine.dialect,
                                            returning="position", where=_PG_LINKED)
        self._outbox_insert = _DriverInsert(outbox, _OUTBOX_COLUMNS, engine.dialect,
                                            where=_PG_OUTBOX_LINKED)
        self._heads = _KnownHeads()

    def _write(self, request: PendingAppend) -> list[StoredEvent]:
        """The append on the head it is known to follow, in one round trip; else the long way."""
        head_hash = self._heads.hash_at(request.case_id, request.expected_version)
        stored = None if head_hash is None else self._append_linked(request, head_hash)
        if stored is None:
            stored = self._append_alone(request)
        self._heads.stored(stored[-1])
        return stored

    def _append_linked(self, request: PendingAppend, head_hash: str) -> list[StoredEvent] | None:
        """The append chained to `head_hash`, committed in one pipeline if every event's link
        holds; None, with nothing written, if the head is not that (or a unique key broke)."""
        case_id = request.case_id
        rows = _chain(case_id, request.expected_version, head_hash, request.new_events)
        linked, outbox_insert = self._linked_insert, self._outbox_insert
        events_values = [(*linked.values(row), row["version"], case_id, row["version"] - 1,
                          row["prev_hash"]) for row in rows]
        outbox_values = [(*outbox_insert.values(row), row["event_id"])
                         for row in _outbox_rows(case_id, rows, request.notifications)]
        raw = self.engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert isinstance(driver, psycopg.Connection)
            try:
                with _as_sqlalchemy_errors(linked.sql, psycopg.Error), driver.pipeline():
                    driver.execute(_PG_LOCK)
                    if len(events_values) == 1:
                        inserted = driver.execute(linked.sql, events_values[0])
                    else:
                        inserted = driver.cursor()
                        inserted.executemany(linked.sql, events_values, returning=True)
                    if outbox_values:
                        driver.cursor().executemany(outbox_insert.sql, outbox_values)
                    driver.commit()
                    positions = _returned(inserted)
            except IntegrityError:
                driver.rollback()
                return None
        finally:
            raw.close()
        if not positions:
            return None
        assert len(positions) == len(rows), "each event links to the one before it"
        return [StoredEvent(position=p, **row) for p, row in zip(positions, rows, strict=True)]

    def _head_for_append(self, conn: Connection, case_id: str) -> tuple[int, str]:
        with _pipeline(conn, _PG_HEAD) as driver:
            row = driver.execute(_PG_HEAD, (case_id,)).fetchone()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def _lock_and_insert(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Several events go in through `executemany`: one ten-parameter statement, prepared
        once. A multi-row VALUES statement (ten parameters a row, over psycopg's fifty-parameter
        cache) would be parsed anew by psycopg and planned anew by the server every time."""
        insert = self._events_insert
        with _pipeline(conn, insert.sql) as driver:
            driver.execute(_PG_LOCK)
            if len(rows) == 1:
                inserted = driver.execute(insert.sql, insert.values(rows[0]))
            else:
                inserted = driver.cursor()
                inserted.executemany(insert.sql, [insert.values(row) for row in rows],
                                     returning=True)
            positions = _returned(inserted)
        assert len(positions) == len(rows), "every row's insert returns its position"
        return positions


def _returned(inserted: psycopg.Cursor[Any]) -> list[int]:
    """The positions an insert returned, a result set per row (an `executemany`); a row not
    inserted (a linked insert whose link does not hold) returns none."""
    positions = []
    while True:
        returned = inserted.fetchone()
        if returned is not None:
            positions.append(int(returned[0]))
        if not inserted.nextset():
            return positions


class _KnownHeads:
    """The head this store last stored for each case: facts, since a stored event never
    changes, though not necessarily the newest (another writer may have appended since),
    which is why the linked insert checks them. Bounded: forgotten all at once when full, a
    forgotten case being appended the long way once."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._heads: dict[str, tuple[int, str]] = {}

    def hash_at(self, case_id: str, version: int) -> str | None:
        """The hash of the case's event `version` if known (genesis for version 0)."""
        if version == 0:
            return GENESIS_HASH
        known = self._heads.get(case_id)
        return known[1] if known is not None and known[0] == version else None

    def stored(self, event: StoredEvent) -> None:
        if len(self._heads) >= self.LIMIT:
            self._heads.clear()
        self._heads[event.case_id] = (event.version, event.hash)


@contextlib.contextmanager
def _pipeline(conn: Connection, statement: str) -> Iterator[psycopg.Connection[Any]]:
    """The append's own psycopg connection (and transaction), in pipeline mode: what is sent
    inside goes in one round trip, up to the first result read. A database error comes out as
    SQLAlchemy's (IntegrityError, OperationalError, …), as the store's other statements raise it."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with _as_sqlalchemy_errors(statement, psycopg.Error), driver.pipeline():
        yield driver


def open_store(url: str | None = None, **engine_options: Any) -> EventStore:
    """The store for `url` (default: CASES_DATABASE_URL, else sqlite:///cases.db)."""
    url = normalise_url(url or database_url())
    if url.startswith("sqlite"):
        return SqliteEventStore(sa.create_engine(url, **engine_options))
    if url.startswith("postgresql"):
        # A pooled connection is checked before use only after a second idle, not on every
        # checkout (eventstore/pool_ping.py), unless the caller asks for pool_pre_ping.
        idle_ping = "pool_pre_ping" not in engine_options
        engine = sa.create_engine(url, **engine_options)
        if idle_ping:
            ping_when_idle(engine)
        return PostgresEventStore(engine)
    raise UnsupportedDatabase(url.split(":", 1)[0])


def _chain(case_id: str, expected_version: int, head_hash: str,
           new_events: Sequence[NewEvent]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev_hash = head_hash
    for offset, new in enumerate(new_events):
        fields: dict[str, Any] = {
            "case_id": case_id, "version": expected_version + offset + 1,
            "event_id": new.event_id, "type": new.type, "schema_version": new.schema_version,
            "occurred_at": as_utc(new.occurred_at), "actor": new.actor,
            "payload": new.payload, "prev_hash": prev_hash,
        }
        fields["hash"] = prev_hash = event_hash(**fields)
        rows.append(fields)
    return rows


def _outbox_rows(case_id: str, rows: list[dict[str, Any]],
                 notifications: Sequence[OutboxMessage]) -> list[dict[str, Any]]:
    occurred = {row["event_id"]: row["occurred_at"] for row in rows}
    return [{"event_id": m.event_id, "case_id": case_id, "recipient": m.recipient[:200],
             "subject": m.subject[:300], "body": m.body, "created_at": occurred[m.event_id],
             "notice": m.notice or {}} for m in notifications]


def _stored(row: sa.Row[Any]) -> StoredEvent:
    m = row._mapping
    return StoredEvent(position=m["position"], case_id=m["case_id"], version=m["version"],
                       event_id=m["event_id"], type=m["type"],
                       schema_version=m["schema_version"], occurred_at=as_utc(m["occurred_at"]),
                       actor=m["actor"], payload=m["payload"], prev_hash=m["prev_hash"],
                       hash=m["hash"])


def _same(stored: StoredEvent, case_id: str, version: int, new: NewEvent) -> bool:
    """The same event, retried. `occurred_at` is left out on purpose: a retry that comes back
    later (a workflow task re-run after a crash) carries a later clock reading for the very
    same event, and the first recording's time stands. Payloads compare as canonical JSON,
    where `true` is not `1`."""
    return (stored.case_id == case_id and stored.version == version
            and stored.type == new.type and stored.schema_version == new.schema_version
            and stored.actor == new.actor
            and canonical_json(stored.payload) == canonical_json(new.payload))


def _utc_param(engine: Engine, moment: datetime) -> datetime:
    moment = as_utc(moment)
    return moment.replace(tzinfo=None) if engine.dialect.name == "sqlite" else moment
