"""Verification: recompute every hash and walk every chain; name the first bad event.

What it proves: every stored event still hashes to its `hash`, each case's versions run
1, 2, 3 … without a gap, each event's `prev_hash` is its predecessor's `hash`, and a case's
positions rise with its versions. What it cannot see alone: a truncated tail or a whole
case deleted; those need a head (version, hash) held outside the table.

`verify_all` reads the table raw (DB-API cursor, payload as text, time as the hash writes it)
and only vouches for a case when every check passes on those raw values; any case it cannot
vouch for is read again through the store and judged by `check_chain`, so the problems it
names are exactly `check_chain`'s.

A payload that cannot be read at all (nested deeper than `chain.MAX_NESTING`, or not JSON) is
a verdict too, `altered` at that version: it is read again from its stored text with an explicit
stack, so that neither the store's JSON reader nor the hash can stop verification with a
RecursionError that names no case.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any

import sqlalchemy as sa

from domain.checkpoints import CHECKPOINT_STREAM
from eventstore.chain import GENESIS_HASH, TooDeep, event_hash, parse_json, row_hash
from eventstore.records import StoredEvent, as_utc
from eventstore.schema import events
from eventstore.store import EventStore


class ProblemKind(StrEnum):
    ALTERED = "altered"
    """The event's content no longer hashes to its stored hash."""
    MISSING = "missing"
    """A version is absent: the chain jumps over it."""
    BROKEN_LINK = "broken_link"
    """The event's prev_hash is not the hash of the event before it."""
    REORDERED = "reordered"
    """The case's positions do not rise with its versions."""


@dataclass(frozen=True)
class Problem:
    case_id: str
    version: int
    kind: ProblemKind
    stored_hash: str | None
    computed_hash: str | None
    detail: str

    def __str__(self) -> str:
        hashes = ""
        if self.stored_hash is not None or self.computed_hash is not None:
            hashes = f" (stored hash {self.stored_hash}, computed {self.computed_hash})"
        return f"case {self.case_id} version {self.version}: {self.kind}: {self.detail}{hashes}"


@dataclass
class Verdict:
    cases: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    """The first problem of each bad case, in case order."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


class UnreadablePayload(dict[str, Any]):
    """Stands in for a stored payload that cannot be read; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def recompute(event: StoredEvent, prev_hash: str | None = None) -> str:
    return event_hash(case_id=event.case_id, version=event.version, event_id=event.event_id,
                      type=event.type, schema_version=event.schema_version,
                      occurred_at=event.occurred_at, actor=event.actor, payload=event.payload,
                      prev_hash=event.prev_hash if prev_hash is None else prev_hash)


def check_chain(case_events: Iterable[StoredEvent]) -> tuple[int, Problem | None]:
    """Walk one case's events in version order; (events seen, first problem or None)."""
    expected_version = 1
    prev_hash = GENESIS_HASH
    prev_position = 0
    seen = 0
    for event in case_events:
        seen += 1
        case_id = event.case_id
        if event.version != expected_version:
            return seen, Problem(case_id, expected_version, ProblemKind.MISSING, None, None,
                                 f"version {expected_version} is missing; the next stored "
                                 f"is version {event.version}")
        try:
            if isinstance(event.payload, UnreadablePayload):
                raise ValueError(event.payload.reason)
            computed = recompute(event)
        except ValueError as unreadable:  # TooDeep, or what JSON cannot hold
            return seen, Problem(case_id, event.version, ProblemKind.ALTERED, event.hash, None,
                                 f"{unreadable}: it cannot be verified; treat it as tampered")
        if computed != event.hash:
            return seen, Problem(case_id, event.version, ProblemKind.ALTERED, event.hash,
                                 computed, "the event's content does not match its hash")
        if event.prev_hash != prev_hash:
            return seen, Problem(case_id, event.version, ProblemKind.BROKEN_LINK, event.hash,
                                 computed, f"prev_hash {event.prev_hash} is not the hash of "
                                 f"version {event.version - 1} ({prev_hash})")
        if event.position <= prev_position:
            return seen, Problem(case_id, event.version, ProblemKind.REORDERED, event.hash,
                                 computed, f"position {event.position} is not after the "
                                 f"previous version's position {prev_position}")
        expected_version += 1
        prev_hash = event.hash
        prev_position = event.position
    return seen, None


def read_for_verification(store: EventStore, case_id: str) -> list[StoredEvent]:
    """The case's events in version order, as `read_case` gives them; if a payload defeats the
    store's JSON reader, every payload is read again from its text with an explicit stack, and
    one that still cannot be read comes back as an UnreadablePayload for check_chain to name."""
    try:
        return store.read_case(case_id)
    except (RecursionError, ValueError):
        pass
    columns = [c for c in events.c if c.name != "payload"]
    query = (sa.select(*columns, sa.cast(events.c.payload, sa.Text).label("payload"))
             .where(events.c.case_id == case_id).order_by(events.c.version))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    read: list[StoredEvent] = []
    for row in rows:
        payload: Any
        try:
            payload = parse_json(row.payload)
        except TooDeep as deep:
            payload = UnreadablePayload(str(deep))
        except (TypeError, ValueError) as error:
            payload = UnreadablePayload(f"the payload is not JSON ({error})")
        read.append(StoredEvent(position=row.position, case_id=row.case_id, version=row.version,
                                event_id=row.event_id, type=row.type,
                                schema_version=row.schema_version,
                                occurred_at=as_utc(row.occurred_at), actor=row.actor,
                                payload=payload, prev_hash=row.prev_hash, hash=row.hash))
    return read


def verify(store: EventStore, case_id: str) -> Verdict:
    count, problem = check_chain(read_for_verification(store, case_id))
    return Verdict(cases=1 if count else 0, events=count, problems=[problem] if problem else [])


_RAW_COLUMNS = {
    "sqlite": "position, case_id, version, event_id, type, schema_version, "
              "replace(occurred_at, ' ', 'T') || 'Z', actor, payload, prev_hash, hash",
    "postgresql": "position, case_id, version, event_id, type, schema_version, "
                  "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                  "actor, payload::text, prev_hash, hash",
}
"""Every column as the driver gives it, except occurred_at already in the hash's form (SQLite
stores `YYYY-MM-DD HH:MM:SS.ffffff`; any other stored form cannot match, and is re-read) and
payload as its stored text, unparsed."""
_PARAM = {"sqlite": "?", "postgresql": "%s"}


@dataclass(frozen=True)
class _Part:
    """The cases from `first` (inclusive) to `end` (exclusive) in the database's case order;
    None is open-ended. Whole cases only, so each part's chains are complete."""

    first: str | None = None
    end: str | None = None


@dataclass
class _PartResult:
    cases: int = 0
    events: int = 0
    suspects: list[str] = field(default_factory=list)
    """Cases the raw scan could not vouch for, in case order."""


def _raw_rows(store: EventStore, part: _Part, batch_size: int) -> Iterator[tuple[Any, ...]]:
    """The part's events in (case_id, version) order, straight from the DB-API cursor:
    SQLAlchemy's row processing and `StoredEvent` cost more than verifying does."""
    dialect = store.engine.dialect.name
    where: list[str] = []
    params: list[str] = []
    if part.first is not None:
        where.append(f"case_id >= {_PARAM[dialect]}")
        params.append(part.first)
    if part.end is not None:
        where.append(f"case_id < {_PARAM[dialect]}")
        params.append(part.end)
    sql = (f"SELECT {_RAW_COLUMNS[dialect]} FROM events"
           f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY case_id, version")
    raw = store.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if dialect == "postgresql":  # a named cursor is server-side: rows come in batches
            cursor = driver.cursor(name="verify_all")
            cursor.itersize = batch_size
        else:
            cursor = driver.cursor()
        try:
            cursor.execute(sql, params)
            yield from cursor
        finally:
            cursor.close()
    finally:
        raw.rollback()
        raw.close()


def _scan(rows: Iterable[tuple[Any, ...]]) -> _PartResult:
    """Count cases and events; name the cases whose raw rows do not prove them intact.

    A case is vouched for only if every event's raw hash equals its stored hash (then the
    row reads back as the event that was hashed) and versions, links and positions are what
    `check_chain` requires; anything else leaves the case for `check_chain` to judge.
    """
    result = _PartResult()
    current: str | None = None
    expected_version = prev_position = 0
    prev_hash = GENESIS_HASH
    intact = True
    for (position, case_id, version, event_id, type_, schema_version, occurred_at, actor,
         payload, link, stored_hash) in rows:
        result.events += 1
        if case_id != current:
            result.cases += 1
            current, intact = case_id, True
            expected_version, prev_hash, prev_position = 1, GENESIS_HASH, 0
        elif not intact:
            continue
        if (version != expected_version or link != prev_hash or position <= prev_position
                or row_hash(case_id, version, event_id, type_, schema_version, occurred_at,
                            actor, payload, link) != stored_hash):
            intact = False
            result.suspects.append(case_id)
            continue
        expected_version += 1
        prev_hash = stored_hash
        prev_position = position
    return result


_FORKED_STORE: list[EventStore] = []
"""The parent's store, inherited by forked workers (its engine holds options a URL lacks)."""


def _adopt_store(store: EventStore) -> None:
    store.engine.dispose(close=False)  # the parent's pooled connections are not ours to use
    _FORKED_STORE.append(store)


def _scan_part(part: _Part, batch_size: int) -> _PartResult:
    return _scan(_raw_rows(_FORKED_STORE[0], part, batch_size))


def _parts(store: EventStore, workers: int) -> list[_Part]:
    """About equal shares of the events, cut at case boundaries."""
    with store.engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())
        cuts: list[str] = []
        for share in range(1, workers):
            cut = conn.execute(sa.select(events.c.case_id)
                               .order_by(events.c.case_id, events.c.version)
                               .offset(total * share // workers).limit(1)).scalar()
            if cut is not None and (not cuts or cut != cuts[-1]):
                cuts.append(cut)
    bounds: list[str | None] = [None, *cuts, None]
    return [_Part(first, end) for first, end in pairwise(bounds)]


def _can_fork(store: EventStore) -> bool:
    """Workers are forked processes with fresh connections: an in-memory SQLite database
    would be a different, empty one there."""
    url = store.engine.url
    in_memory = url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory")
    return "fork" in multiprocessing.get_all_start_methods() and not in_memory


def verify_all(store: EventStore, batch_size: int = 5000, workers: int = 1) -> Verdict:
    """Every case in the store, streamed; reports the first problem of each bad case.

    `batch_size` is rows per round trip on PostgreSQL. `workers` > 1 verifies that many
    shares of the cases in forked processes (chains are independent per case); it pays only
    with that many idle cores, and falls back to one process where forking cannot work.
    """
    if workers > 1 and _can_fork(store):
        parts = _parts(store, workers)
        with multiprocessing.get_context("fork").Pool(len(parts), _adopt_store,
                                                      (store,)) as pool:
            results = pool.starmap(_scan_part, [(part, batch_size) for part in parts])
    else:
        results = [_scan(_raw_rows(store, _Part(), batch_size))]
    verdict = Verdict()
    for result in results:
        verdict.cases += result.cases
        verdict.events += result.events
        for case_id in result.suspects:
            _, problem = check_chain(read_for_verification(store, case_id))
            if problem is not None:
                verdict.problems.append(problem)
    return verdict


ENDING_TYPES = ("CaseClosed", "CaseWithdrawn")


def cases_left_open(store: EventStore) -> dict[str, str]:
    """Every case whose newest event does not end it: case id → that event's type. (Whether
    each still has a workflow to move it on is Temporal's to say: application.stuck_cases.)"""
    newest = (sa.select(events.c.case_id, sa.func.max(events.c.version).label("version"))
              .group_by(events.c.case_id).subquery())
    query = (sa.select(events.c.case_id, events.c.type)
             .join(newest, sa.and_(events.c.case_id == newest.c.case_id,
                                   events.c.version == newest.c.version))
             .where(events.c.type.not_in(ENDING_TYPES))
             .where(events.c.case_id != CHECKPOINT_STREAM))
    with store.engine.connect() as conn:
        return {row.case_id: row.type for row in conn.execute(query)}
