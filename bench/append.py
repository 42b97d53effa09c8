"""Append throughput of the event store against a plain insert of the same rows (issue 2).

Why it exists: `EventStore.append` validates, reads the case head, hashes, serialises writers
(BEGIN IMMEDIATE on SQLite, LOCK TABLE on PostgreSQL) and returns positions. This measures
what that costs next to the cheapest way to write the very same rows: a SQLAlchemy Core
insert of precomputed rows into a copy of the `events` table (same columns, constraints and
index) through the store's own engine, so connection settings and pragmas are identical.
The target is store/baseline >= 0.5, one event per transaction and ten per transaction.

Run it from the repository root:

    .venv/bin/python bench/append.py
    .venv/bin/python bench/append.py --events 5000 --databases sqlite --repeat 5
    .venv/bin/python bench/append.py --profile      # cProfile of the store's appends
    .venv/bin/python bench/append.py --writers 16 --databases sqlite

`--writers N` (N > 1) shows concurrent appenders, as a Temporal worker's activity threads make
them: each measurement's cases are shared out among N threads that append at once (each case
to one thread, in version order), and the baseline inserts the same rows from N threads split
the same way. On SQLite this is where the store's group commit shows: appends waiting for its
single writer are committed together, in one transaction.

SQLite runs in a temporary file. PostgreSQL runs at CASES_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test) in a schema of its own, dropped at the
end; if it is unreachable that is printed and the run goes on with SQLite.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

from domain.events import CaseRequested
from domain.vocabulary import CaseKind
from eventstore import EventStore, NewEvent, StoredEvent, open_store
from eventstore.chain import GENESIS_HASH, event_hash
from eventstore.schema import events

POSTGRES_URL = os.environ.get(
    "CASES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_RATIO = 0.5
BATCH_SIZES = (1, 10)

COUNCILS = ("E06000001", "E06000047", "E07000223", "E08000025", "E09000008", "E09000033",
            "E10000014", "W06000015", "W06000011", "S12000036", "N09000003", "K04000001")
REASONS = (
    "Budget gap of £4.2m \"flagged\" by the s151 officer\n",
    "Children’s services judged ‘requires improvement’ after the Ofsted visit",
    "Cyngor yn gofyn am adolygiad gan gymheiriaid — Ynys Môn, Gŵyr a’r Fro",
    "Adult social care waiting lists grew 37 % year on year; résumé of actions attached",
    "Leader asked for a peer challenge before the 2026/27 budget — “urgent” ✓",
    "Governance review after the monitoring officer’s s5 report (Zürich-style audit)",
)
SCOPES = ("finance", "governance", "leadership", "housing", "children", "adult_social_care",
          "place_shaping", "capacity_to_improve", "digital", "workforce")
ACTORS = ("officer:siân.jones", "officer:oluwaseun.adeyemi", "member:cllr.o’brien",
          "lga:challenge.manager", "system:workflow")


# --- the workload ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Transaction:
    """One append: the store's arguments, and the same rows precomputed for the baseline."""

    case_id: str
    expected_version: int
    new_events: list[NewEvent]
    rows: list[dict[str, Any]]


def _payload(rng: random.Random) -> dict[str, Any]:
    event = CaseRequested(
        council=rng.choice(COUNCILS),
        kind=rng.choice(list(CaseKind)),
        reason=rng.choice(REASONS) + f" (ref {rng.randrange(10**6):06d})",
        scope=rng.sample(SCOPES, rng.randint(1, 5)),
        budget_gap_pence=rng.randrange(0, 10**10),
    )
    return event.payload()


def workload(prefix: str, n_events: int, n_cases: int, batch: int,
             rng: random.Random) -> list[Transaction]:
    """`n_events` spread over `n_cases`, appended round-robin, `batch` versions at a time."""
    per_case = [n_events // n_cases + (1 if i < n_events % n_cases else 0)
                for i in range(n_cases)]
    start = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    heads = {i: (0, GENESIS_HASH) for i in range(n_cases)}
    transactions: list[Transaction] = []
    tick = 0
    while any(heads[i][0] < per_case[i] for i in range(n_cases)):
        for i in range(n_cases):
            version, prev_hash = heads[i]
            take = min(batch, per_case[i] - version)
            if take <= 0:
                continue
            case_id = f"{prefix}-{COUNCILS[i % len(COUNCILS)]}-{i:04d}"
            new_events: list[NewEvent] = []
            rows: list[dict[str, Any]] = []
            for offset in range(take):
                tick += 1
                new = NewEvent(event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                               type="CaseRequested", schema_version=1,
                               occurred_at=start + timedelta(seconds=tick, microseconds=tick),
                               actor=rng.choice(ACTORS), payload=_payload(rng))
                fields: dict[str, Any] = {
                    "case_id": case_id, "version": version + offset + 1,
                    "event_id": new.event_id, "type": new.type,
                    "schema_version": new.schema_version, "occurred_at": new.occurred_at,
                    "actor": new.actor, "payload": new.payload, "prev_hash": prev_hash,
                }
                fields["hash"] = prev_hash = event_hash(**fields)
                new_events.append(new)
                rows.append(fields)
            transactions.append(Transaction(case_id, version, new_events, rows))
            heads[i] = (version + take, prev_hash)
    return transactions


# --- the baseline table: a copy of `events` ---------------------------------------------------

def baseline_table() -> sa.Table:
    """`events` as `events_baseline`: same columns, unique and check constraints, and the
    occurred_at index the migration adds; constraint names changed so they do not collide."""
    metadata = sa.MetaData()
    columns: list[SchemaItem] = [
        sa.Column(c.name, c.type, primary_key=c.primary_key, autoincrement=c.autoincrement,
                  nullable=c.nullable)
        for c in events.columns
    ]
    for constraint in events.constraints:
        name = str(constraint.name).replace("events", "events_baseline")
        if isinstance(constraint, sa.UniqueConstraint):
            columns.append(sa.UniqueConstraint(*[c.name for c in constraint.columns], name=name))
        elif isinstance(constraint, sa.CheckConstraint):
            columns.append(sa.CheckConstraint(str(constraint.sqltext), name=name))
    columns.append(sa.Index("ix_events_baseline_occurred_at", "occurred_at"))
    return sa.Table("events_baseline", metadata, *columns, **dict(events.dialect_kwargs))


# --- the runs ---------------------------------------------------------------------------------

def run_store(store: EventStore, transactions: Sequence[Transaction]) -> float:
    """Seconds to append every transaction through the store; checks the hashes afterwards."""
    results: list[list[StoredEvent]] = []
    started = time.perf_counter()
    for tx in transactions:
        results.append(store.append(tx.case_id, tx.expected_version, tx.new_events))
    elapsed = time.perf_counter() - started
    check_hashes(transactions, results)
    return elapsed


def check_hashes(transactions: Sequence[Transaction],
                 results: Sequence[Sequence[StoredEvent]]) -> None:
    """The store's answers must carry the precomputed hashes, append by append."""
    for tx, stored in zip(transactions, results, strict=True):
        if [s.hash for s in stored] != [r["hash"] for r in tx.rows]:
            raise SystemExit(f"store hashes for {tx.case_id} differ from the precomputed ones")


def run_baseline(engine: sa.Engine, table: sa.Table,
                 transactions: Sequence[Transaction]) -> float:
    """Seconds to insert the same precomputed rows, one transaction per append."""
    insert = table.insert()
    started = time.perf_counter()
    for tx in transactions:
        with engine.begin() as conn:
            conn.execute(insert, tx.rows)
    return time.perf_counter() - started


# --- concurrent writers (--writers N, N > 1) ----------------------------------------------------

def split_by_case(transactions: Sequence[Transaction], writers: int) -> list[list[Transaction]]:
    """The transactions shared out among `writers` lanes, one per thread: each case goes to one
    lane (cases dealt round-robin in order of first appearance), its transactions in their
    original order, so a case is appended in version order and never by two threads."""
    lanes: list[list[Transaction]] = [[] for _ in range(writers)]
    lane_of: dict[str, int] = {}
    for tx in transactions:
        lanes[lane_of.setdefault(tx.case_id, len(lane_of) % writers)].append(tx)
    return lanes


def in_threads(work: Callable[[int], object], writers: int) -> float:
    """Seconds for `work(0)` … `work(writers - 1)`, one thread each, released together by a
    barrier and timed from it to the last join. An exception in any thread is raised here."""
    started: list[float] = []
    barrier = threading.Barrier(writers, action=lambda: started.append(time.perf_counter()))
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as error:  # raised again below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,), name=f"bench-writer-{index}")
               for index in range(writers)]
    try:
        for thread in threads:
            thread.start()
    except BaseException:
        barrier.abort()  # the threads already started stop waiting (BrokenBarrierError)
        raise
    finally:
        for thread in threads:
            if thread.ident is not None:
                thread.join()
    elapsed = time.perf_counter() - started[0] if started else 0.0
    if errors:
        raise BaseExceptionGroup(f"{len(errors)} of {writers} writer threads failed", errors)
    return elapsed


def run_store_concurrently(store: EventStore, lanes: Sequence[Sequence[Transaction]]) -> float:
    """Seconds to append every lane through the store, a thread per lane, all at once; checks
    the hashes of each lane's answers after the threads are joined."""
    results: list[list[list[StoredEvent]]] = [[] for _ in lanes]

    def work(index: int) -> None:
        answers = results[index]
        for tx in lanes[index]:
            answers.append(store.append(tx.case_id, tx.expected_version, tx.new_events))

    elapsed = in_threads(work, len(lanes))
    for lane, answers in zip(lanes, results, strict=True):
        check_hashes(lane, answers)
    return elapsed


def run_baseline_concurrently(engine: sa.Engine, table: sa.Table,
                              lanes: Sequence[Sequence[Transaction]]) -> float:
    """Seconds to insert every lane's precomputed rows, a thread per lane, all at once."""
    return in_threads(lambda index: run_baseline(engine, table, lanes[index]), len(lanes))


def concurrent(store: EventStore, table: sa.Table, transactions: Sequence[Transaction],
               writers: int, *, store_first: bool) -> tuple[float, float]:
    """(store seconds, baseline seconds) over the same transactions, each side appended by
    `writers` threads at once, split by case the same way; `store_first` says which side goes
    first (the caller alternates it between runs so that drifting load hits both)."""
    lanes = split_by_case(transactions, writers)
    store_seconds = baseline_seconds = 0.0
    for store_turn in (True, False) if store_first else (False, True):
        if store_turn:
            store_seconds = run_store_concurrently(store, lanes)
        else:
            baseline_seconds = run_baseline_concurrently(store.engine, table, lanes)
    return store_seconds, baseline_seconds


def pool_options(writers: int) -> dict[str, Any]:
    """Engine options for `open_store`: with N writers, a pool that holds a connection for each
    thread (the store's appends and the baseline's inserts both take theirs from it)."""
    if writers == 1:
        return {}
    return {"pool_size": max(5, writers), "max_overflow": 10}


# --- the figures ------------------------------------------------------------------------------

@dataclass
class Figures:
    database: str
    batch: int
    events: int
    writers: int = 1
    store_seconds: list[float] = field(default_factory=list)
    baseline_seconds: list[float] = field(default_factory=list)

    @property
    def store_rate(self) -> float:
        return self.events / statistics.median(self.store_seconds)

    @property
    def baseline_rate(self) -> float:
        return self.events / statistics.median(self.baseline_seconds)

    @property
    def ratio(self) -> float:
        """The median of the runs' store/baseline ratios (each run measures both: with one
        writer interleaved, with several one side after the other, alternating which first)."""
        return statistics.median(b / s for s, b in zip(self.store_seconds,
                                                       self.baseline_seconds, strict=True))


def interleaved(store: EventStore, table: sa.Table, transactions: Sequence[Transaction],
                chunk: int = 20) -> tuple[float, float]:
    """(store seconds, baseline seconds) over the same transactions, taken in alternating
    chunks so that background load and database drift (WAL growth, checkpoints) hit both."""
    store_seconds = baseline_seconds = 0.0
    for index, start in enumerate(range(0, len(transactions), chunk)):
        part = transactions[start:start + chunk]
        for store_turn in (True, False) if index % 2 == 0 else (False, True):
            if store_turn:
                store_seconds += run_store(store, part)
            else:
                baseline_seconds += run_baseline(store.engine, table, part)
    return store_seconds, baseline_seconds


def measure(database: str, store: EventStore, *, n_events: int, n_cases: int, repeat: int,
            profile: bool, seed: int, writers: int = 1) -> list[Figures]:
    rng = random.Random(seed)
    table = baseline_table()
    table.metadata.create_all(store.engine)
    warm = workload("warmup", 40, 4, 5, rng)  # pools, compiled statements, file growth
    if writers == 1:
        interleaved(store, table, warm)
    else:
        # a case per thread too, so the pool opens a connection for each; its own generator,
        # so the measured workloads are the very ones a single writer gets
        wide = workload("warmup-wide", 5 * writers, writers, 1, random.Random(seed + 1))
        for part in (warm, wide):
            concurrent(store, table, part, writers, store_first=True)
    figures = []
    for batch in BATCH_SIZES:
        fig = Figures(database, batch, n_events, writers)
        for r in range(repeat):
            transactions = workload(f"b{batch}r{r}", n_events, n_cases, batch, rng)
            if writers == 1:
                store_seconds, baseline_seconds = interleaved(store, table, transactions)
            else:
                store_seconds, baseline_seconds = concurrent(
                    store, table, transactions, writers, store_first=r % 2 == 0)
            fig.store_seconds.append(store_seconds)
            fig.baseline_seconds.append(baseline_seconds)
        runs = ", ".join(f"{b / s:.2f}" for s, b in zip(fig.store_seconds, fig.baseline_seconds,
                                                          strict=True))
        who = "" if writers == 1 else f", {writers} writers"
        print(f"  {database} batch {batch:>2}{who}: store {fig.store_rate:8.0f} ev/s, "
              f"baseline {fig.baseline_rate:8.0f} ev/s (store/baseline by run: {runs})",
              flush=True)
        figures.append(fig)
    if profile:
        for batch in BATCH_SIZES:
            transactions = workload(f"profile-b{batch}", n_events, n_cases, batch, rng)
            profiler = cProfile.Profile()
            profiler.enable()
            run_store(store, transactions)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
            print(f"\n--- cProfile: {database}, store.append, batch {batch} ---")
            print(out.getvalue())
    return figures


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def settings(database: str, engine: sa.Engine) -> str:
    with engine.connect() as conn:
        if database == "sqlite":
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
            return f"SQLite {version}, journal_mode={mode}, synchronous={sync} (2 = FULL)"
        shown = {name: conn.exec_driver_sql(f"SHOW {name}").scalar()
                 for name in ("server_version", "fsync", "synchronous_commit",
                              "wal_sync_method")}
        return "PostgreSQL " + ", ".join(f"{k}={v}" for k, v in shown.items())


# --- the databases ----------------------------------------------------------------------------

@contextmanager
def sqlite_store(**engine_options: Any) -> Iterator[EventStore]:
    with tempfile.TemporaryDirectory(prefix="bench-append-") as directory:
        store = open_store(f"sqlite:///{directory}/cases.db", **engine_options)
        try:
            store.migrate()
            yield store
        finally:
            store.dispose()


def postgres_problem() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


@contextmanager
def postgres_store(**engine_options: Any) -> Iterator[EventStore]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    store = open_store(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"},
                       **engine_options)
    try:
        store.migrate()
        yield store
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


# --- main -------------------------------------------------------------------------------------

def render_table(figures: Sequence[Figures]) -> str:
    """The markdown table; a `writers` column only when some figures had more than one."""
    several = any(f.writers > 1 for f in figures)
    header = ("| database | events/txn | store.append ev/s | plain insert ev/s "
              "| store/baseline | target >= 0.5 |")
    rule = "|---|---:|---:|---:|---:|---|"
    if several:
        header = header.replace("| database |", "| database | writers |", 1)
        rule = rule.replace("|---|", "|---|---:|", 1)
    lines = [header, rule]
    for f in figures:
        verdict = "met" if f.ratio >= TARGET_RATIO else "MISSED"
        writers = f" {f.writers} |" if several else ""
        lines.append(f"| {f.database} |{writers} {f.batch} | {f.store_rate:,.0f} "
                     f"| {f.baseline_rate:,.0f} | {f.ratio:.2f} | {verdict} |")
    return "\n".join(lines)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000,
                        help="events per measurement (default 2000)")
    parser.add_argument("--cases", type=int, default=100,
                        help="cases the events are spread over (default 100)")
    parser.add_argument("--databases", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres (default both)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each measurement; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of the store's appends (one thread)")
    parser.add_argument("--writers", type=positive_int, default=1,
                        help="threads appending at once, each to cases of its own, as a "
                             "worker's activity threads do (default 1: one thread, the store "
                             "and the baseline interleaved)")
    args = parser.parse_args(argv)
    wanted = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(wanted) - {"sqlite", "postgres"}
    if unknown or args.events < 1 or args.cases < 1 or args.repeat < 1:
        parser.error(f"bad arguments (unknown databases: {sorted(unknown)})" if unknown
                     else "--events, --cases and --repeat must be 1 or more")

    print(f"Python {platform.python_version()}, SQLAlchemy {sa.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}")
    writers = args.writers
    concurrently = "" if writers == 1 else f", {writers} concurrent writers (threads)"
    print(f"{args.events} events over {args.cases} cases per measurement{concurrently}, "
          f"median of {args.repeat} runs\n")
    if writers > args.cases:
        print(f"note: only {args.cases} of the {writers} writers have cases to append\n")
    figures: list[Figures] = []
    for database in wanted:
        if database == "postgres":
            problem = postgres_problem()
            if problem is not None:
                print(f"PostgreSQL at {POSTGRES_URL} is unreachable ({problem}); skipped\n")
                continue
        opener = sqlite_store if database == "sqlite" else postgres_store
        with opener(**pool_options(writers)) as store:
            print(f"{settings(database, store.engine)}; load average {load()}")
            figures += measure(database, store, n_events=args.events, n_cases=args.cases,
                               repeat=args.repeat, profile=args.profile, seed=args.seed,
                               writers=writers)
            print()
    if figures:
        print(render_table(figures))
        how = ("interleaved runs" if writers == 1
               else "runs that alternate which side goes first")
        print(f"\nload average at the end: {load()} (other work on the machine skews both "
              f"columns; the ratio is taken from {how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
