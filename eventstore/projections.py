"""The read models, projected from `events` in position order, and what reads them.

Why positions: the store hands them out in commit order (eventstore/store.py), so a reader
that has applied every event up to position P never meets a later commit below P. Positions
may skip numbers (a sequence value taken by an append that rolled back), so the projector
checks what must not skip: each case's versions follow one another and each event's
`prev_hash` is the hash of the event before it in its case. A gap or a broken link stops
the projection: it records where, and readers refuse to serve figures from it until it is
rebuilt (`cases projections rebuild`, once `cases verify` says the store is whole).

Each batch is one transaction: it locks the projection's position row (PostgreSQL: `SELECT …
FOR UPDATE`; SQLite: BEGIN IMMEDIATE), reads the events after it, changes the rows and moves
the position. Two projectors racing (several workers) queue on that lock, and the second
starts from where the first left off: no event is applied twice or skipped.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from domain.events import EVENT_CLASSES
from domain.figures import AnnualFigures, CaseFacts, FiguresTally
from domain.policies import PolicyBook
from domain.read_models import CaseSummary, case_summary, council_summary
from domain.state import CaseState, OutOfOrder, apply
from domain.vocabulary import CaseKind, Stage
from eventstore.chain import GENESIS_HASH
from eventstore.records import StoredEvent
from eventstore.schema import (
    case_figures,
    case_summaries,
    council_summaries,
    events,
    projections,
)
from eventstore.store import EventStore, _stored

READ_MODELS = "read_models"
"""The one position the three read models share: they change together, in one transaction."""
BATCH_SIZE = 1000
_SUMMARY_COLUMNS = tuple(CaseSummary.model_fields)
FOLDED_CASES = 2000
"""How many folded cases a projector keeps between batches: a whole case's models take about
22 KB (55 cases of a year, measured), so at most about 45 MB a worker."""


class ProjectionBroken(RuntimeError):
    """The events have a gap or a broken link where the projection reached them."""


@dataclass(frozen=True)
class ProjectionStatus:
    position: int
    """The last event applied."""
    last_position: int
    """The store's newest event."""
    problem: str | None

    @property
    def behind(self) -> int:
        """How many positions the read models lag the store (at most that many events)."""
        return max(0, self.last_position - self.position)


def status(engine: Engine) -> ProjectionStatus:
    """Where the read models stand: one SELECT, fit for a poll several times a second."""
    query = sa.select(
        sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0)).scalar_subquery(),
        projections.c.position, projections.c.problem,
    ).where(projections.c.name == READ_MODELS)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:  # pragma: no cover - the migration writes the row
        return ProjectionStatus(0, 0, "the read models' position row is missing; run "
                                      "`cases db upgrade`")
    return ProjectionStatus(position=int(row[1]), last_position=int(row[0]), problem=row[2])


def require_sound(engine: Engine) -> ProjectionStatus:
    """The status, or ProjectionBroken saying where the projection stopped."""
    current = status(engine)
    if current.problem is not None:
        raise ProjectionBroken(
            f"the read models stopped at position {current.position}: {current.problem}; "
            "nothing is served from them until `cases verify` finds the store whole and "
            "`cases projections rebuild` has run")
    return current


class Projector:
    """Applies the events after the read models' position, a batch per transaction.

    It keeps the cases it has folded (`folded_cases` of them at most) between batches: a case
    whose row still says the version and head hash it was kept at is taken as kept, without
    reading, parsing and validating its stored JSON again (every batch did, for every case it
    touched, though the rows are nearly always the ones the same projector wrote). The hash
    chain makes (version, head hash) name the whole history, and the fold is a function of
    the history, so a kept case is what the row's JSON would give; a row another projector has
    moved on says another head, and is read again."""

    def __init__(self, store: EventStore, book: PolicyBook | None = None,
                 batch_size: int = BATCH_SIZE, folded_cases: int = FOLDED_CASES) -> None:
        self.store = store
        self.book = book or PolicyBook(demo_mode=True)
        """Reading a policy's name is not granting it: demo names resolve here too."""
        self.batch_size = batch_size
        self.folded_cases = folded_cases
        self._folded: dict[str, _Case] = {}

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def catch_up(self, max_events: int | None = None) -> int:
        """Apply every event not yet applied (or up to `max_events`); how many were."""
        applied = 0
        while max_events is None or applied < max_events:
            size = self.batch_size if max_events is None else min(self.batch_size,
                                                                  max_events - applied)
            done = self._batch(size)
            applied += done
            if done < size:
                break
        return applied

    def rebuild(self) -> int:
        """Drop every row and project from nothing; how many events were applied."""
        self._folded.clear()
        with self._writing() as conn, conn.begin():
            self._lock(conn, refuse_broken=False)
            for table in (case_figures, council_summaries, case_summaries):
                conn.execute(table.delete())
            conn.execute(projections.update().where(projections.c.name == READ_MODELS)
                         .values(position=0, problem=None, updated_at=datetime.now(UTC)))
        return self.catch_up()

    # --- one batch ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        conn = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn:
            yield conn

    def _lock(self, conn: Connection, *, refuse_broken: bool = True) -> int:
        query = sa.select(projections.c.position, projections.c.problem).where(
            projections.c.name == READ_MODELS)
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).one()
        if refuse_broken and row.problem is not None:
            raise ProjectionBroken(row.problem)
        return int(row.position)

    def _batch(self, size: int) -> int:
        try:
            with self._writing() as conn, conn.begin():
                position = self._lock(conn)
                try:
                    rows = conn.execute(sa.select(events).where(events.c.position > position)
                                        .order_by(events.c.position).limit(size)).all()
                except (RecursionError, ValueError) as unreadable:  # written behind our back
                    raise _Broken(f"an event after position {position} cannot be read back "
                                  f"({type(unreadable).__name__}); `cases verify` names the "
                                  "case") from None
                if not rows:
                    return 0
                stored = [_stored(row) for row in rows]
                touched = self._apply(conn, stored)
                conn.execute(projections.update().where(projections.c.name == READ_MODELS)
                             .values(position=stored[-1].position,
                                     updated_at=datetime.now(UTC)))
        except _Broken as broken:
            self._record_problem(str(broken))
            raise ProjectionBroken(str(broken)) from None
        self._keep(touched)  # committed: only now are they what the rows say
        return len(stored)

    def _record_problem(self, problem: str) -> None:
        with self._writing() as conn, conn.begin():
            conn.execute(projections.update().where(projections.c.name == READ_MODELS)
                         .values(problem=problem, updated_at=datetime.now(UTC)))

    def _apply(self, conn: Connection, stored: list[StoredEvent]) -> dict[str, _Case]:
        cases = _Cases.load(conn, {e.case_id for e in stored}, self._folded)
        for event in stored:
            cases.apply(event)
        cases.write(conn, self.book)
        return cases.known

    def _keep(self, touched: dict[str, _Case]) -> None:
        """Remember the batch's cases as written; start again empty when the bound is reached
        (cases in flight are folded back in within a batch or two)."""
        if len(self._folded) + len(touched) > self.folded_cases:
            self._folded.clear()
            if len(touched) > self.folded_cases:
                return
        self._folded.update(touched)


class _Broken(Exception):
    pass


@dataclass
class _Case:
    state: CaseState
    facts: CaseFacts | None
    version: int
    head_hash: str
    last_position: int
    council_input: tuple[Any, ...] | None
    """What its council's summary reads of its row, as the row stands (`_council_input`)."""


_COUNCIL_INPUTS = ("council", "kind", "visit_ended_on", "report_published_on",
                   "action_plan_published_on", "progress_review_on",
                   "progress_review_published_on", "report_url", "action_plan_url",
                   "progress_review_url")
"""The columns of a case's summary that `council_summary` reads (besides the case id, which
never changes): while none of a batch's cases changes them, no council summary changes."""


def _council_input(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """A case's `_COUNCIL_INPUTS`, or None when no council summary counts it (not a corporate
    peer challenge, or no visit yet)."""
    corporate = values[1] == CaseKind.CORPORATE_PEER_CHALLENGE.value
    return values if corporate and values[2] is not None else None


class _Cases:
    """The cases one batch touches: loaded, advanced event by event, written back."""

    def __init__(self, known: dict[str, _Case]) -> None:
        self.known = known

    @classmethod
    def load(cls, conn: Connection, case_ids: set[str],
             folded: dict[str, _Case] | None = None) -> _Cases:
        """Each case's row as it stands: from `folded` when the row says the same version and
        head hash (two short columns read), else parsed from its JSON."""
        folded = {} if folded is None else folded
        known: dict[str, _Case] = {}
        summary, figures = case_summaries.c, case_figures.c
        ids = sorted(case_ids)
        stale: list[str] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for case_id, version, head_hash in conn.execute(
                    sa.select(summary.case_id, summary.version, summary.head_hash)
                    .where(summary.case_id.in_(chunk))):
                kept = folded.get(case_id)
                if kept is not None and (kept.version, kept.head_hash) == (version, head_hash):
                    known[case_id] = replace(kept)  # a copy: the batch may yet roll back
                else:
                    stale.append(case_id)
        for start in range(0, len(stale), 500):
            chunk = stale[start:start + 500]
            for row in conn.execute(
                    sa.select(summary.case_id, summary.state, summary.version, summary.head_hash,
                              summary.last_position, figures.facts,
                              *(summary[name] for name in _COUNCIL_INPUTS))
                    .select_from(case_summaries.outerjoin(
                        case_figures, figures.case_id == summary.case_id))
                    .where(summary.case_id.in_(chunk))):
                known[row.case_id] = _Case(
                    state=CaseState.model_validate(row.state),
                    facts=CaseFacts.model_validate(row.facts) if row.facts is not None else None,
                    version=row.version, head_hash=row.head_hash,
                    last_position=row.last_position,
                    council_input=_council_input(tuple(row._mapping[name]
                                                       for name in _COUNCIL_INPUTS)))
        return cls(known)

    def apply(self, event: StoredEvent) -> None:
        kind = EVENT_CLASSES.get(event.type)
        if kind is not None and not kind.case_event:
            return  # another stream (checkpoints), which has its own verification
        case = self.known.get(event.case_id)
        version, head = (case.version, case.head_hash) if case else (0, GENESIS_HASH)
        if event.version != version + 1:
            raise _Broken(f"case {event.case_id}: version {event.version} (position "
                          f"{event.position}) follows version {version}; a version is missing")
        if event.prev_hash != head:
            raise _Broken(f"case {event.case_id}: version {event.version} (position "
                          f"{event.position}) does not link to version {version} (its prev_hash "
                          "is not that event's hash)")
        try:
            recorded = event.to_recorded()
        except (RecursionError, ValueError) as unreadable:
            raise _Broken(f"case {event.case_id}: version {event.version} (position "
                          f"{event.position}) cannot be read back: "
                          f"{str(unreadable).splitlines()[0] if str(unreadable) else ''}"
                          ) from None
        try:
            if case is None:
                state = apply(CaseState(case_id=event.case_id), recorded)
                if state.council is None:
                    raise _Broken(f"case {event.case_id}: its first event (position "
                                  f"{event.position}) is {event.type}, not a request")
                case = _Case(state=state, facts=CaseFacts.opening(recorded), version=0,
                             head_hash=head, last_position=0, council_input=None)
                self.known[event.case_id] = case
            else:
                case.state = apply(case.state, recorded)
                if case.facts is not None:
                    case.facts = case.facts.apply(recorded)
        except OutOfOrder as problem:  # pragma: no cover - the version check comes first
            raise _Broken(str(problem)) from None
        case.version, case.head_hash, case.last_position = (event.version, event.hash,
                                                            event.position)

    def write(self, conn: Connection, book: PolicyBook) -> None:
        """Each case's rows upserted (one statement a table, not a delete and an insert), and
        the summaries of the councils whose cases changed what those read."""
        ids = sorted(self.known)
        if not ids:
            return
        dialect = conn.dialect.name
        summaries = {case_id: case_summary(self.known[case_id].state, book) for case_id in ids}
        conn.execute(_upsert(dialect, case_summaries), [
            {**summaries[case_id].model_dump(), "version": case.version,
             "head_hash": case.head_hash, "last_position": case.last_position,
             "state": case.state.model_dump(mode="json")}
            for case_id, case in ((i, self.known[i]) for i in ids)])
        figures = [{"case_id": case_id, "council": case.state.council,
                    "kind": summaries[case_id].kind, "facts": case.facts.model_dump(mode="json"),
                    **_placing(case.facts)}
                   for case_id, case in ((i, self.known[i]) for i in ids)
                   if case.facts is not None]
        if figures:
            conn.execute(_upsert(dialect, case_figures), figures)
        councils: set[str] = set()
        for case_id in ids:
            case = self.known[case_id]
            now = _council_input(tuple(getattr(summaries[case_id], name)
                                       for name in _COUNCIL_INPUTS))
            if now != case.council_input:
                councils.update(str(said[0]) for said in (now, case.council_input)
                                if said is not None)
                case.council_input = now
        if councils:
            _write_councils(conn, councils)


@functools.cache
def _upsert(dialect: str, table: sa.Table) -> sa.Insert:
    """An insert that replaces the row with the same key: what the delete and insert did,
    in one statement (PostgreSQL and SQLite both say it `ON CONFLICT … DO UPDATE`)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    key = [column for column in table.columns if column.primary_key]
    return statement.on_conflict_do_update(
        index_elements=key,
        set_={column.name: statement.excluded[column.name] for column in table.columns
              if not column.primary_key})


def _placing(facts: CaseFacts) -> dict[str, date | None]:
    """The dates that can place a case's facts in a period (case_figures' indexed columns)."""
    escalated = [*facts.escalations_raised_on, *facts.escalations_resolved_on]
    return {"visit_ended_on": facts.visit_ended_on,
            "report_published_on": facts.report_published_on,
            "action_plan_published_on": facts.action_plan_published_on,
            "escalations_from": min(escalated, default=None),
            "escalations_to": max(escalated, default=None)}


def _write_councils(conn: Connection, councils: Iterable[str]) -> None:
    """Work each council's summary out again from its corporate cases' summaries."""
    wanted = sorted(set(councils))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        by_council: dict[str, list[CaseSummary]] = {gss: [] for gss in chunk}
        query = sa.select(*(case_summaries.c[name] for name in _SUMMARY_COLUMNS)).where(
            case_summaries.c.council.in_(chunk),
            case_summaries.c.kind == CaseKind.CORPORATE_PEER_CHALLENGE.value,
            case_summaries.c.visit_ended_on.is_not(None))
        for found in conn.execute(query):
            summary = _summary(found._mapping)
            by_council[summary.council].append(summary)
        conn.execute(council_summaries.delete().where(council_summaries.c.gss_code.in_(chunk)))
        rows = [row for gss in chunk
                if (row := council_summary(gss, by_council[gss])) is not None]
        if rows:
            conn.execute(council_summaries.insert(), rows)


def _summary(mapping: Any) -> CaseSummary:
    values = {name: mapping[name] for name in _SUMMARY_COLUMNS}
    at = values["next_deadline_at"]
    if isinstance(at, datetime) and at.tzinfo is None:
        values["next_deadline_at"] = at.replace(tzinfo=UTC)
    return CaseSummary(**values)


# --- reads ------------------------------------------------------------------------------

def is_open_case() -> sa.ColumnElement[bool]:
    """A case summary whose stage is open (not closed, not withdrawn)."""
    return case_summaries.c.stage.in_([s.value for s in Stage if s.is_open])


def case_rows(engine: Engine, *, stage: str | None = None, council: str | None = None,
              kind: str | None = None, escalated: bool = False,
              include_ended: bool = False) -> list[CaseSummary]:
    """Case summaries, open ones unless `include_ended`, soonest deadline first."""
    query = sa.select(*(case_summaries.c[name] for name in _SUMMARY_COLUMNS))
    if not include_ended:
        query = query.where(is_open_case())
    if stage is not None:
        query = query.where(case_summaries.c.stage == stage)
    if council is not None:
        query = query.where(case_summaries.c.council == council)
    if kind is not None:
        query = query.where(case_summaries.c.kind == kind)
    if escalated:
        query = query.where(case_summaries.c.escalation_level > 0)
    with engine.connect() as conn:
        rows = [_summary(row._mapping) for row in conn.execute(query)]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(rows, key=lambda r: (r.next_deadline_at is None, r.next_deadline_at or far,
                                       r.case_id))


def council_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every council summary, by GSS code."""
    with engine.connect() as conn:
        return {row.gss_code: dict(row._mapping)
                for row in conn.execute(sa.select(council_summaries))}


def all_facts(engine: Engine, batch_size: int = 5000) -> Iterator[CaseFacts]:
    """Every case's figure facts, streamed (one row at a time held as JSON)."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
            sa.select(case_figures.c.facts).order_by(case_figures.c.case_id))
        for (facts,) in result:
            yield CaseFacts.model_validate(facts)


def facts_for_period(engine: Engine, start: date, end: date,
                     batch_size: int = 5000) -> list[CaseFacts]:
    """The facts of every case a period's figures can count: its visit ended, its report or
    action plan was published, or it escalated, in `start`..`end`. (What `figures_from_facts`
    needs besides: each council's first corporate visit, `first_corporate_visits`.) Read with
    the garbage collector paused: it would walk the growing list again at every allocation
    threshold, for nothing, tripling the time."""
    c = case_figures.c
    query = sa.select(c.facts).where(_in_period(start, end)).order_by(c.case_id)
    collecting = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
                query)
            return [CaseFacts.model_validate(facts) for (facts,) in result]
    finally:
        if collecting:
            gc.enable()


def figures_for_period(engine: Engine, start: date, end: date,
                       batch_size: int = 2000) -> AnnualFigures:
    """The period's figures, streamed: each case the period can count is read as its facts'
    JSON text, parsed by orjson and counted as stored (`FiguresTally.add_stored`), then let
    go, so memory holds the ids behind the figures and not the facts. No model is built per
    case: for the 45,902 cases of a million events' year, validating them took 0.4-0.6 s of
    CPU, orjson 0.16 s. The garbage collector is paused meanwhile (it would walk every object
    at each allocation threshold, for nothing)."""
    tally = FiguresTally(start, end, first_corporate_visits(engine))
    c = case_figures.c
    query = sa.select(sa.cast(c.facts, sa.Text)).where(_in_period(start, end))
    collecting = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
                query)
            add, parse = tally.add_stored, orjson.loads
            try:
                for (text,) in result:
                    add(parse(text))
            except (KeyError, TypeError, ValueError, AttributeError) as unreadable:
                # Derived rows not as the projector writes them: altered by hand, or by an
                # older engine. The events are the record; the read models can be rebuilt.
                raise ProjectionBroken(
                    f"a case's figure facts cannot be read ({type(unreadable).__name__}: "
                    f"{unreadable}); run `cases projections rebuild` to project them again "
                    "from the events") from None
    finally:
        if collecting:
            gc.enable()
    return tally.figures(case_count(engine))


def _in_period(start: date, end: date) -> sa.ColumnElement[bool]:
    """The cases a period's figures can count: a visit, a publication or an escalation in it."""
    c = case_figures.c
    return sa.or_(
        c.visit_ended_on.between(start, end), c.report_published_on.between(start, end),
        c.action_plan_published_on.between(start, end),
        sa.and_(c.escalations_from <= end, c.escalations_to >= start))


def first_corporate_visits(engine: Engine) -> dict[str, tuple[date, list[str]]]:
    """Each council's first corporate visit ever (imported history included) and the case(s)
    holding it: what "first time" is judged by. The database ranks each council's visits and
    sends the first (a row a council and not one a corporate case; one pass over the table)."""
    c = case_figures.c
    ranked = (sa.select(c.council, c.visit_ended_on, c.case_id,
                        sa.func.rank().over(partition_by=c.council,
                                            order_by=c.visit_ended_on).label("place"))
              .where(c.kind == CaseKind.CORPORATE_PEER_CHALLENGE.value,
                     c.visit_ended_on.is_not(None))
              .subquery())
    query = (sa.select(ranked.c.council, ranked.c.visit_ended_on, ranked.c.case_id)
             .where(ranked.c.place == 1).order_by(ranked.c.council, ranked.c.case_id))
    first: dict[str, tuple[date, list[str]]] = {}
    with engine.connect() as conn:
        for council, day, case_id in conn.execute(query):
            first.setdefault(council, (day, []))[1].append(case_id)
    return first


def case_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(case_figures))
                   .scalar_one())


def last_visits(engine: Engine) -> dict[str, date]:
    """Each council's last corporate visit (its last day), from the council summaries."""
    return {gss: row["visit_ended_on"] for gss, row in council_rows(engine).items()}
