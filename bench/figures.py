"""The annual figures of a large store from the read models, against the fold they replaced
(issue 17).

Why it exists: `cases report annual` used to read every event of the store and fold each
case's history (`case_histories` + `annual_figures`); it now reads one row of facts a case from
the read models (`all_facts` + `figures_from_facts`), which the workers' projection loop keeps
current. This measures, on a store of N events (default 1,000,000) of realistic cases:

- `cases report annual --financial-year Y --json`, the real command in a process of its own:
  wall time (start-up and imports included) and peak RSS (the command's own `ru_maxrss`, from
  `os.wait4` in a small launcher that forks it: see `LAUNCHER` for why not straight from
  here). Target (issue 17): 2 s or less, 300 MB or less (MB = 10^6 bytes);
- the same read in a child process without the CLI around it (`_report`'s
  `figures_for_period`: each council's first corporate visit, then the facts of the cases
  the period can count streamed and counted, and the count of cases): how much of the
  command is start-up; and, beside it, every case's facts read as `_report` read them until
  the period's dates were indexed (`all_facts` + `figures_from_facts`), split into reading
  and computing;
- the fold of today, the baseline, in a child process: `case_histories(store)` then
  `annual_figures(...)`, as the command did before the read models; the ratio baseline/new of
  time and of peak memory is taken within the run. The figures of all of them (the headline
  and the cases behind each) must be equal, or the run exits 1;
- `Projector(store).rebuild()` over the whole store (no target; what a rebuild costs);
- the projection's catch-up lag while appends run: the workers' loop
  (`runtime.projecting.project`, interval 0.2 s) beside writers appending new cases' events
  as the workflow records them (each command's events one append, ~200 events/s over 20 cases
  in flight, from 4 threads); for each append, from its commit to the first poll of
  `status()` (every 10 ms) that shows the projection at or past it. Target: p99 1 s or less.

The store is filled through `EventStore.append_cases` (hash chains made by the store itself),
a few hundred cases a transaction, from case histories generated as tests/test_domain_figures.py
makes them (its generator is copied here so that the bench does not import pytest), over 317
councils (England's current councils; `--councils`) and one council new to the programme for
every 55 cases. `verify_all` checks the filled store before anything is measured. PostgreSQL
by default, in a fresh schema dropped at the end; `--database-url` names another PostgreSQL
database (a fresh schema in it too) or a new SQLite file (removed at the end). `--profile`
adds a cProfile of the in-process read as `_report` does it.

    .venv/bin/python bench/figures.py                        # 1,000,000 events, PostgreSQL
    .venv/bin/python bench/figures.py --profile              # and where the read's time goes
    .venv/bin/python bench/figures.py --events 50000 --lag-seconds 10
    .venv/bin/python bench/figures.py --database-url sqlite:////tmp/figures.db
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import io
import json
import logging
import math
import os
import platform
import pstats
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from domain import commands as cmd
from domain import events as ev
from domain.deadlines import DeadlinePolicy, next_due, on_due
from domain.figures import annual_figures, figures_from_facts, financial_year
from domain.peers import SelectionRules
from domain.recorded import Recorded
from domain.rules import decide
from domain.state import CaseState, apply
from domain.vocabulary import CaseKind, VisitMode
from eventstore import EventStore, NewEvent, open_store
from eventstore.export import case_histories
from eventstore.projections import (
    Projector,
    all_facts,
    figures_for_period,
    require_sound,
    status,
)
from eventstore.verify import verify_all

POSTGRES_URL = os.environ.get(
    "CASES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parent.parent
CASES = Path(sys.executable).parent / "cases"
"""The `cases` command installed beside this interpreter (the venv's)."""
YEAR = 2025
"""The financial year reported: 1 April 2025 to 31 March 2026, where the generated visits lie."""
TARGET_SECONDS, TARGET_MB, TARGET_LAG_MS = 2.0, 300.0, 1000.0
CASES_A_TRANSACTION = 300

# --- case histories, as tests/test_domain_figures.py generates them -----------------------------
# Copied (not imported: the test modules import pytest) and cut to what the bench needs. The
# edge-of-period cases keep their dates but take a random council: every seed adds them, and
# pinned to five councils they would pile thousands of cases onto those five. Each seed's
# first case around 2025 goes to a council new to the programme (W and the seed), so that
# "councils having one for the first time" counts something in a store this size.

NAMESPACE = uuid.UUID("0b6e3f4c-7d1a-4c55-9a0e-5a1f2b3c4d5e")
OFFICER = "officer:siân.jones"
DEADLINE_ENGINE = "system:deadlines"
START, END = date(2025, 1, 1), date(2025, 12, 31)
OFFICERS = [f"o{n:02d}" for n in range(1, 81)] + ["x-both"]
MEMBERS = [f"m{n:02d}" for n in range(1, 51)] + ["x-both"]
MANAGERS = ["cm1", "cm2", "cm3"]


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, clock(hour, 0), tzinfo=UTC)


def doc(text: str) -> str:
    return uuid.uuid5(NAMESPACE, text).hex * 2


@dataclass
class Driver:
    """One case driven as the workflow drives it: what the deadline engine has due by a
    command's moment is recorded first, then the rules decide the command."""

    case_id: str
    policy: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    history: list[Recorded] = field(default_factory=list)
    state: CaseState = field(init=False)

    def __post_init__(self) -> None:
        self.state = CaseState(case_id=self.case_id)

    def record(self, events: Iterable[ev.Event], moment: datetime, actor: str) -> None:
        for event in events:
            version = self.state.version + 1
            recorded = Recorded(
                case_id=self.case_id, version=version, occurred_at=moment, actor=actor,
                event_id=str(uuid.uuid5(NAMESPACE, f"{self.case_id}/{version}")), event=event)
            self.state = apply(self.state, recorded)
            self.history.append(recorded)

    def catch_up(self, until: datetime) -> None:
        while (due := next_due(self.state, self.policy)) is not None and due.due_at <= until:
            self.record(on_due(self.state, due), due.due_at, DEADLINE_ENGINE)

    def act(self, command: cmd.Command, moment: datetime) -> None:
        self.catch_up(moment)
        self.record(decide(self.state, command, moment), moment, command.actor)


@dataclass(frozen=True)
class Plan:
    case_id: str
    council: str
    kind: CaseKind
    visit_end: date | None
    """None: withdrawn before the visit."""
    team: tuple[ev.PeerPlace, ...]
    objected: ev.PeerPlace | None
    publish_delay: int | None
    plan_extra: int | None
    withdrawn_after_visit: bool
    lapse_unanswered: bool
    engine_selected: bool

    @property
    def visit_recorded_at(self) -> datetime:
        assert self.visit_end is not None
        return at(self.visit_end + timedelta(days=1), 10)

    @property
    def published_at(self) -> datetime | None:
        if self.visit_end is None or self.publish_delay is None:
            return None
        return at(self.visit_end + timedelta(days=self.publish_delay), 12)

    @property
    def plan_at(self) -> datetime | None:
        published = self.published_at
        if published is None or self.plan_extra is None:
            return None
        return at(published.date() + timedelta(days=self.plan_extra), 15)


def _place(rng: random.Random, peer_id: str, role: Any) -> ev.PeerPlace:
    home = None if role == "challenge_manager" else f"E07{rng.randrange(1, 999999):06d}"
    return ev.PeerPlace(peer_id=peer_id, name=f"Peer {peer_id}", role=role, home_council=home)


def _team(rng: random.Random) -> tuple[tuple[ev.PeerPlace, ...], ev.PeerPlace | None]:
    officers = rng.sample(OFFICERS, 5)
    members = [m for m in rng.sample(MEMBERS, 3) if m not in officers][:3]
    seats = [_place(rng, members[0], "lead_member"), _place(rng, officers[0], "lead_officer")]
    seats += [_place(rng, o, "officer") for o in officers[1:rng.randint(2, 4)]]
    seats += [_place(rng, m, "member") for m in members[1:rng.randint(1, len(members))]]
    seats.append(_place(rng, rng.choice(MANAGERS), "challenge_manager"))
    objected = _place(rng, officers[4], "officer") if rng.random() < 0.25 else None
    return tuple(seats), objected


def plan_year(seed: int, councils: Sequence[str]) -> list[Plan]:
    """55 cases: 10 with visits in earlier years, 5 at the edges of 2025, 40 around 2025
    (the first of them for a council new to the programme)."""
    rng = random.Random(seed)
    plans: list[Plan] = []

    def add(visit_end: date | None, kind: CaseKind | None = None,
            publish_delay: int | None = -1, plan_extra: int | None = -1,
            council: str | None = None) -> None:
        n = len(plans)
        team, objected = _team(rng)
        delay = publish_delay
        if publish_delay == -1:
            delay = None if rng.random() < 0.15 else rng.randint(20, 140)
        withdrawn_after = visit_end is not None and publish_delay == -1 and rng.random() < 0.1
        if withdrawn_after:
            delay = None
        extra = None if delay is None or rng.random() < 0.15 else rng.choice(
            [0, rng.randint(1, 110)])
        if plan_extra != -1:
            extra = plan_extra
        unanswered = (visit_end is not None and delay is None and not withdrawn_after
                      and rng.random() < 0.5)
        plans.append(Plan(
            case_id=f"bench-{seed:06d}-{n:02d}", council=council or rng.choice(councils),
            kind=kind or rng.choice([CaseKind.CORPORATE_PEER_CHALLENGE] * 4 + list(CaseKind)),
            visit_end=visit_end, team=team, objected=objected, publish_delay=delay,
            plan_extra=extra, withdrawn_after_visit=withdrawn_after,
            lapse_unanswered=unanswered, engine_selected=n % 3 != 0))

    for _ in range(10):
        add(date(2018, 1, 1) + timedelta(days=rng.randrange(0, 7 * 365 - 60)))
    corporate = CaseKind.CORPORATE_PEER_CHALLENGE
    add(START, corporate, publish_delay=60)
    add(END, corporate, publish_delay=None)
    add(START - timedelta(days=1), corporate, publish_delay=95)
    add(END - timedelta(days=100), CaseKind.FINANCE, publish_delay=100)
    add(date(2025, 3, 1), CaseKind.PLANNING, publish_delay=100, plan_extra=80)
    for index in range(40):
        visit = START - timedelta(days=60) + timedelta(days=rng.randrange(0, 365 + 90))
        add(None if rng.random() < 0.15 else visit,
            council=f"W{seed:08d}" if index == 0 else None)
    return plans


def history_of(plan: Plan) -> list[Recorded]:
    """The plan driven through the rules, the deadline engine recording lapses as they fall."""
    d = Driver(plan.case_id)
    contact = f"council:{plan.council}"
    visit_end = plan.visit_end or date(2025, 6, 1)
    visit_start = visit_end - timedelta(days=2)
    requested = visit_start - timedelta(days=40)
    d.act(cmd.RequestCase(actor=OFFICER, case_id=plan.case_id, council=plan.council,
                          kind=plan.kind, reason="Planned"), at(requested, 9))
    d.act(cmd.ScopeCase(actor=OFFICER, scope=["governance"], visit_mode=VisitMode.ON_SITE),
          at(requested + timedelta(days=1)))
    if plan.objected is not None:
        d.act(cmd.ProposePeerTeam(actor=OFFICER, team=[*plan.team, plan.objected]),
              at(requested + timedelta(days=2)))
        d.act(cmd.ObjectToPeer(actor=contact, peer_id=plan.objected.peer_id,
                               reason="Conflict of interest"), at(requested + timedelta(days=3)))
    if plan.engine_selected:  # as the workflow records the selection activity's answer
        selection = ev.PeerSelectionRecord(
            algorithm="peer-selection/1", seed=7, pool_version=1, pool_digest="0" * 64,
            scope=["governance"], visit_from=visit_start, visit_to=visit_end,
            rules=SelectionRules())
        d.record([ev.PeerTeamProposed(team=list(plan.team), selected_by="engine",
                                      selection=selection)],
                 at(requested + timedelta(days=4)), OFFICER)
    else:
        d.act(cmd.ProposePeerTeam(actor=OFFICER, team=list(plan.team)),
              at(requested + timedelta(days=4)))
    d.act(cmd.ConfirmPeerTeam(actor=OFFICER), at(requested + timedelta(days=5)))
    if plan.visit_end is None:
        d.act(cmd.WithdrawCase(actor=OFFICER, reason="The council withdrew"),
              at(requested + timedelta(days=6)))
        return d.history
    d.act(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=visit_start,
                            ends_on=visit_end), at(requested + timedelta(days=6)))
    d.act(cmd.RecordVisit(actor=OFFICER, started_on=visit_start, ended_on=visit_end),
          plan.visit_recorded_at)
    d.act(cmd.GiveFeedback(actor=OFFICER, given_on=visit_end, summary="Feedback given."),
          plan.visit_recorded_at + timedelta(hours=1))
    sent = visit_end + timedelta(days=3)
    d.act(cmd.DraftReport(actor=OFFICER, document_sha256=doc(f"{plan.case_id} draft"),
                          sent_on=sent), at(sent))
    d.act(cmd.SubmitFactualAccuracyComments(actor=contact, comments="Two corrections."),
          at(sent + timedelta(days=2)))
    d.act(cmd.FinaliseReport(actor=OFFICER, document_sha256=doc(f"{plan.case_id} final")),
          at(sent + timedelta(days=5)))
    if plan.withdrawn_after_visit:
        d.act(cmd.WithdrawCase(actor=OFFICER, reason="Council reorganised"),
              at(sent + timedelta(days=6)))
    published, plan_at = plan.published_at, plan.plan_at
    if published is not None:
        d.act(cmd.PublishReport(actor=contact, published_on=published.date(),
                                url="https://example.org/r"), published)
    if plan_at is not None:
        d.act(cmd.PublishActionPlan(actor=contact, published_on=plan_at.date(),
                                    url="https://example.org/p"), plan_at)
    if plan.lapse_unanswered:
        d.catch_up(plan.visit_recorded_at + timedelta(days=100))
    return d.history


def new_events(history: Sequence[Recorded]) -> list[NewEvent]:
    return [NewEvent.of(r.event, event_id=r.event_id, occurred_at=r.occurred_at, actor=r.actor)
            for r in history]


def histories(seeds: Iterable[int], councils: Sequence[str]) -> Iterator[list[Recorded]]:
    for seed in seeds:
        for plan in plan_year(seed, councils):
            yield history_of(plan)


def council_codes(count: int) -> list[str]:
    return [f"E06{n:06d}" for n in range(1, count + 1)]


# --- the store ---------------------------------------------------------------------------------

def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def fresh_store(url: str | None, prefix: str = "bench_figures",
                **engine_options: int) -> Iterator[tuple[EventStore, str]]:
    """A migrated, empty store and the URL a child process opens it with: PostgreSQL in a new
    schema (dropped at the end; named in the URL, so `cases` in a child finds it too), or a
    new SQLite file (removed at the end)."""
    url = url or POSTGRES_URL
    if url.startswith("sqlite"):
        path = Path(sa.make_url(url).database or "")
        if not path.name or path.exists():
            raise SystemExit(f"--database-url {url}: give a SQLite file that does not exist yet")
        store = open_store(url)
        try:
            store.migrate()
            yield store, url
        finally:
            store.dispose()
            for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    scoped_url = scoped.render_as_string(hide_password=False)
    store = open_store(scoped_url, **(engine_options or {"pool_size": 10, "max_overflow": 10}))
    try:
        store.migrate()
        yield store, scoped_url
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def fill(store: EventStore, target: int, councils: Sequence[str]) -> tuple[int, int, int]:
    """Append generated cases until `target` events are stored, CASES_A_TRANSACTION cases to
    an `append_cases` call; (events, cases, the next unused seed). Each call is checked: the
    store must give back every event at the versions sent."""
    stored = cases = seed = 0
    batch: list[tuple[str, int, list[NewEvent]]] = []
    generating = writing = 0.0
    reported = 0

    def write() -> None:
        nonlocal stored, cases, writing
        started = time.perf_counter()
        answers = store.append_cases(batch)
        writing += time.perf_counter() - started
        for (_, _, sent), got in zip(batch, answers, strict=True):
            assert len(got) == len(sent) and got[-1].version == len(sent)
        stored += sum(len(sent) for _, _, sent in batch)
        cases += len(batch)
        batch.clear()

    while stored + sum(len(e) for _, _, e in batch) < target:
        started = time.perf_counter()
        for plan in plan_year(seed, councils):
            history = history_of(plan)
            batch.append((plan.case_id, 0, new_events(history)))
        seed += 1
        generating += time.perf_counter() - started
        if len(batch) >= CASES_A_TRANSACTION:
            write()
            if stored - reported >= 100_000:
                reported = stored
                print(f"  {stored:,} events, {cases:,} cases (generating {generating:.0f} s, "
                      f"appending {writing:.0f} s; load {load()})", flush=True)
    if batch:
        write()
    print(f"  {stored:,} events, {cases:,} cases: generating {generating:.0f} s, appending "
          f"{writing:.0f} s ({stored / writing:,.0f} events/s through append_cases)", flush=True)
    return stored, cases, seed


# --- child processes, each measured alone ------------------------------------------------------

@dataclass
class Run:
    wall: float
    """Seconds from starting the process (fork and exec) to its exit."""
    peak_mb: float
    """The process's peak RSS (its own `ru_maxrss`, from wait4 in `LAUNCHER`), MB."""
    stdout: str
    stderr: str


LAUNCHER = """
import os, sys, time
report = int(sys.argv[1])
began = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(report)
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(report, f"{time.perf_counter() - began} {usage.ru_maxrss}".encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs argv[2:] and writes its wall time and peak RSS (KiB) to the fd argv[1]. Why: a process
this bench starts inherits the bench's own peak RSS as its `ru_maxrss` (Python spawns with
vfork, and Linux carries the high-water mark of the memory it replaces across exec), and the
bench holds hundreds of MB by then: until 2026-12 the command's peak was reported as 331 MB
when it was 130. Forked from this small launcher (`python -S`, about 10 MB), the figure is
the command's own."""


def run_process(argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a process to its end, through `LAUNCHER`: its own wall time and peak RSS."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, str(write_end), *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO, text=True,
            pass_fds=(write_end,))
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as report:
        out, err = process.communicate()
        measured = report.read().split()
    if process.returncode != 0 or len(measured) != 2:
        raise RuntimeError(f"{' '.join(argv[:4])} … exited {process.returncode}:\n"
                           + "".join(err.splitlines(keepends=True)[-20:]))
    return Run(wall=float(measured[0]), peak_mb=int(measured[1]) * 1024 / 1e6, stdout=out,
               stderr=err)


def child(which: str, url: str, year: int, profile: bool) -> None:
    """In a child process: one way of computing the figures, timed after the imports; prints
    JSON (seconds, reading and computing, how many cases' facts were read, RSS after imports
    and at peak, the figures with their cases). `report` is what `cases report annual` does
    (cli/auditing.py `_report`: `figures_for_period`, which reads and counts in one stream, so
    its time is not split); `facts` reads every case's facts, as it did until the period's
    dates were indexed; `fold` is the fold of every event it did before the read models."""
    store = open_store(url)
    start, end = financial_year(year)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    began = time.perf_counter()
    if which == "fold":
        read = case_histories(store)
        phase, count = time.perf_counter(), len(read)
        figures = annual_figures(read.values(), start, end)
    elif which == "facts":
        require_sound(store.engine)
        facts = list(all_facts(store.engine))
        phase, count = time.perf_counter(), len(facts)
        figures = figures_from_facts(facts, start, end)
    else:  # read and counted in one stream: no phases
        require_sound(store.engine)
        figures = figures_for_period(store.engine, start, end)
        phase, count = time.perf_counter(), None
    done = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
        print(text.getvalue(), file=sys.stderr)
    store.dispose()
    print(json.dumps({
        "seconds": done - began, "reading": phase - began, "computing": done - phase,
        "cases_read": count, "rss_after_imports_mb": rss_before,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        "figures": figures.traced()}))


def in_child(which: str, url: str, year: int, profile: bool = False) -> tuple[Run, dict[str, Any]]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", which,
            "--database-url", url, "--financial-year", str(year)]
    run = run_process([*argv, "--profile"] if profile else argv)
    return run, json.loads(run.stdout)


def the_command(url: str, year: int) -> tuple[Run, dict[str, Any]]:
    """`cases report annual --financial-year Y --json`, as an auditor runs it."""
    env = {**os.environ, "CASES_DATABASE_URL": url}
    run = run_process([str(CASES), "report", "annual", "--financial-year", str(year), "--json"],
                      env)
    answer = json.loads(run.stdout)
    answer.pop("projection", None)
    return run, answer


# --- catch-up lag ------------------------------------------------------------------------------

def appends_of(history: Sequence[Recorded]) -> list[list[NewEvent]]:
    """A history cut as the workflow appends it: the events of one moment and actor (one
    command's, or one lapse with its escalation) in one append."""
    groups: list[list[NewEvent]] = []
    last: tuple[datetime, str] | None = None
    for recorded, new in zip(history, new_events(history), strict=True):
        key = (recorded.occurred_at, recorded.actor)
        if key != last:
            groups.append([])
            last = key
        groups[-1].append(new)
    return groups


@dataclass
class Writing:
    """A case the writer has in flight: its id, the version stored so far, what is left."""

    case_id: str
    version: int
    groups: list[list[NewEvent]]


@dataclass
class Lag:
    appends: int = 0
    events: int = 0
    seconds: float = 0.0
    lags_ms: list[float] = field(default_factory=list)
    polls: int = 0
    unseen: int = 0


def catch_up_lag(store: EventStore, *, seconds: float, rate: float, interval: float,
                 first_seed: int, councils: Sequence[str], writers: int = 4,
                 in_flight: int = 20) -> Lag:
    """A worker's projection loop beside `writers` threads appending new cases (`in_flight`
    cases at a time in all, round robin, paced to `rate` events/s in all; several threads, as a
    worker's activities append, so that one slow commit does not hold the rate down): for each
    append, the time from its commit (the append returned) to the first poll of `status()`
    showing the read models at or past it."""
    from runtime.projecting import project  # the workers' loop itself

    pending: list[Writing] = []
    made = 0
    for history in histories(range(first_seed, first_seed + 100_000), councils):
        pending.append(Writing(history[0].case_id, 0, appends_of(history)))
        made += len(history)
        if made >= seconds * rate * 1.2 + 100:
            break
    commits: list[tuple[float, int]] = []  # (monotonic once the append returned, position)
    polled_at: list[float] = []
    polled_position: list[int] = []
    done_polling = threading.Event()
    sent = [0] * writers
    lag = Lag()

    def poll() -> None:
        while not done_polling.is_set():
            position = status(store.engine).position
            polled_at.append(time.monotonic())
            polled_position.append(position)
            time.sleep(0.01)

    def write(index: int, began: float) -> None:
        waiting = iter(pending[index::writers])
        writing: list[Writing] = []
        turn = 0
        while time.monotonic() - began < seconds:
            while (len(writing) < in_flight // writers
                   and (case := next(waiting, None)) is not None):
                writing.append(case)
            if not writing:
                break
            turn %= len(writing)
            case = writing[turn]
            batch = case.groups.pop(0)
            answer = store.append(case.case_id, case.version, batch)
            commits.append((time.monotonic(), answer[-1].position))
            case.version += len(batch)
            sent[index] += len(batch)
            if case.groups:
                turn += 1
            else:
                writing.pop(turn)
            ahead = began + sent[index] / (rate / writers) - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def write_all() -> None:
        began = time.monotonic()
        threads = [threading.Thread(target=write, args=(index, began),
                                    name=f"bench-writer-{index}") for index in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        lag.seconds = time.monotonic() - began
        lag.events = sum(sent)

    async def follow() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(project(store, stopping, interval=interval))
        poller = threading.Thread(target=poll, name="bench-status-poll", daemon=True)
        poller.start()
        try:
            await asyncio.to_thread(write_all)
            last = max((position for _, position in commits), default=0)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                    not polled_position or polled_position[-1] < last):
                await asyncio.sleep(0.05)
        finally:
            done_polling.set()
            stopping.set()
            await task
            poller.join()

    asyncio.run(follow())
    lag.appends, lag.polls = len(commits), len(polled_at)
    for committed, position in commits:
        seen = bisect.bisect_left(polled_position, position)  # positions only grow
        if seen == len(polled_position):
            lag.unseen += 1
        else:
            lag.lags_ms.append(max(0.0, polled_at[seen] - committed) * 1000)
    return lag


# --- the figures -------------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def settings(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
            return f"SQLite {version} (WAL)"
        shown = {name: conn.exec_driver_sql(f"SHOW {name}").scalar()
                 for name in ("server_version", "fsync", "shared_buffers", "work_mem")}
        return "PostgreSQL " + ", ".join(f"{k}={v}" for k, v in shown.items())


def split(measured: dict[str, Any]) -> str:
    """An in-process read's seconds, and its reading and computing where it has them apart."""
    if measured["cases_read"] is None:
        return f"{measured['seconds']:.2f} s (read and counted in one stream)"
    return (f"{measured['seconds']:.2f} s (reading {measured['cases_read']:,} cases' facts "
            f"{measured['reading']:.2f} s, figures {measured['computing']:.2f} s)")


def verdict(met: bool) -> str:
    return "yes" if met else "NO"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events in the store (default 1,000,000; whole cases, so a few more)")
    parser.add_argument("--database-url",
                        help=f"PostgreSQL (a fresh schema in it; default {POSTGRES_URL}) or "
                             "sqlite:///NEW-FILE")
    parser.add_argument("--financial-year", type=int, default=YEAR,
                        help=f"the year reported (default {YEAR}: 2025/26)")
    parser.add_argument("--councils", type=int, default=317,
                        help="councils the cases are spread over (default 317)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the command and of the in-process read (default 3; the "
                             "median time, the largest peak); the fold runs once")
    parser.add_argument("--lag-seconds", type=float, default=30.0,
                        help="how long appends run beside the projection (default 30)")
    parser.add_argument("--lag-rate", type=float, default=200.0,
                        help="events a second appended meanwhile (default 200)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of the in-process read, as `_report` does "
                             "it")
    parser.add_argument("--child", choices=["fold", "facts", "report"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.database_url, args.financial_year, args.profile)
        return 0
    if args.events < 1 or args.repeat < 1 or args.councils < 5:
        parser.error("--events and --repeat must be 1 or more, --councils 5 or more")

    from runtime.logging import configure
    configure(level=logging.WARNING)  # the projection loop logs each catch-up at DEBUG
    councils = council_codes(args.councils)
    print(f"Python {platform.python_version()}, SQLAlchemy {sa.__version__}, {os.cpu_count()} "
          f"CPUs, {platform.platform()}; load {load()}", flush=True)
    with fresh_store(args.database_url) as (store, url):
        print(f"{settings(store.engine)}; financial year {args.financial_year}/"
              f"{(args.financial_year + 1) % 100:02d}, cases over {len(councils)} councils "
              "(and one new to the programme for every 55 cases)",
              flush=True)
        began = time.perf_counter()
        stored, cases, next_seed = fill(store, args.events, councils)
        print(f"filled {stored:,} events of {cases:,} cases in "
              f"{time.perf_counter() - began:.0f} s; load {load()}", flush=True)

        began = time.perf_counter()
        verified = verify_all(store)
        assert verified.ok and verified.events == stored, verified.problems[:3]
        print(f"verify_all: every hash and link holds ({verified.events:,} events, "
              f"{time.perf_counter() - began:.1f} s)", flush=True)

        began = time.perf_counter()
        applied = Projector(store).rebuild()
        rebuild = time.perf_counter() - began
        assert applied == stored, (applied, stored)
        print(f"Projector.rebuild(): {applied:,} events in {rebuild:.1f} s "
              f"({applied / rebuild:,.0f} events/s); load {load()}", flush=True)

        startup = run_process([sys.executable, "-c", "import cli.main"])
        print(f"interpreter + `import cli.main`: {startup.wall:.2f} s, peak {startup.peak_mb:.0f} "
              f"MB", flush=True)
        commands: list[Run] = []
        reads: dict[str, list[tuple[Run, dict[str, Any]]]] = {"report": [], "facts": []}
        fold: tuple[Run, dict[str, Any]] | None = None
        answers: list[dict[str, Any]] = []
        said = {"report": "in-process, as `_report` reads (`figures_for_period`)",
                "facts": "in-process, every case's facts (`all_facts`)"}
        for round_ in range(args.repeat):
            run, answer = the_command(url, args.financial_year)
            commands.append(run)
            answers.append(answer)
            print(f"  `cases report annual --json` #{round_ + 1}: {run.wall:.2f} s, peak "
                  f"{run.peak_mb:.0f} MB; load {load()}", flush=True)
            for which in ("report", "facts"):
                run, measured = in_child(which, url, args.financial_year)
                reads[which].append((run, measured))
                answers.append(measured["figures"])
                print(f"  {said[which]} #{round_ + 1}: {split(measured)}, process "
                      f"{run.wall:.2f} s, peak {run.peak_mb:.0f} MB; load {load()}", flush=True)
            if round_ == 0:
                fold = in_child("fold", url, args.financial_year)
                run, measured = fold
                answers.append(measured["figures"])
                print(f"  the fold of today: {measured['seconds']:.1f} s (case_histories "
                      f"{measured['reading']:.1f} s, annual_figures {measured['computing']:.1f} "
                      f"s), process {run.wall:.1f} s, peak {run.peak_mb:.0f} MB; load {load()}",
                      flush=True)
        assert fold is not None
        agree = all(answer == answers[0] for answer in answers)
        headline = {k: v for k, v in answers[0].items() if k != "case_ids"}
        print(f"figures agree (headline and the cases behind each; the command, both in-process "
              f"reads, the fold): {'yes' if agree else 'no'}\n  {json.dumps(headline)}",
              flush=True)
        if args.profile:
            run, _ = in_child("report", url, args.financial_year, profile=True)
            print(f"\n--- cProfile of the in-process read, as `_report` reads ---\n{run.stderr}",
                  flush=True)

        lag = catch_up_lag(store, seconds=args.lag_seconds, rate=args.lag_rate, interval=0.2,
                           first_seed=next_seed, councils=councils)
        print(f"catch-up lag: {lag.appends:,} appends ({lag.events:,} events, "
              f"{lag.events / lag.seconds:.0f}/s over {lag.seconds:.1f} s), {lag.polls:,} polls; "
              f"p50 {percentile(lag.lags_ms, 50):.0f} ms, p99 {percentile(lag.lags_ms, 99):.0f} "
              f"ms, max {max(lag.lags_ms, default=float('nan')):.0f} ms"
              + (f"; {lag.unseen} appends never seen applied" if lag.unseen else "")
              + f"; load {load()}", flush=True)

    command_s = statistics.median(r.wall for r in commands)
    command_mb = max(r.peak_mb for r in commands)
    fold_run, fold_measured = fold
    lag_p99 = percentile(lag.lags_ms, 99) if not lag.unseen else float("inf")

    def in_process(which: str) -> tuple[str, float]:
        """The median run's figure (seconds, reading + computing, cases read, largest peak)."""
        measured = sorted((m for _, m in reads[which]), key=lambda m: float(m["seconds"]))
        m = measured[len(measured) // 2]
        peak = max(r.peak_mb for r, _ in reads[which])
        return f"{split(m)}, peak {peak:.0f} MB", float(m["seconds"])

    report_text, report_s = in_process("report")
    facts_text, facts_s = in_process("facts")
    rows = [
        ("`cases report annual --json`, process wall (median)", f"{command_s:.2f} s",
         f"fold of today, process: {fold_run.wall:.1f} s", f"{fold_run.wall / command_s:.1f}",
         f"≤ {TARGET_SECONDS:g} s: {verdict(command_s <= TARGET_SECONDS)}"),
        ("same, peak RSS (largest)", f"{command_mb:.0f} MB",
         f"fold of today: {fold_run.peak_mb:,.0f} MB", f"{fold_run.peak_mb / command_mb:.1f}",
         f"≤ {TARGET_MB:g} MB: {verdict(command_mb <= TARGET_MB)}"),
        ("in-process, as `_report` reads (median)", report_text,
         f"`case_histories` + `annual_figures`: {fold_measured['seconds']:.1f} s",
         f"{fold_measured['seconds'] / report_s:.1f}", "no target"),
        ("in-process, `all_facts` + `figures_from_facts` (median)", facts_text,
         f"`case_histories` + `annual_figures`: {fold_measured['seconds']:.1f} s",
         f"{fold_measured['seconds'] / facts_s:.1f}", "no target"),
        ("interpreter + `import cli.main`", f"{startup.wall:.2f} s, {startup.peak_mb:.0f} MB",
         "—", "—", "no target"),
        ("`Projector.rebuild()`", f"{rebuild:.0f} s ({stored / rebuild:,.0f} ev/s)", "—", "—",
         "no target"),
        (f"catch-up lag p99 ({lag.events / lag.seconds:.0f} ev/s appended)",
         f"{lag_p99:.0f} ms", "—", "—",
         f"≤ {TARGET_LAG_MS:g} ms: {verdict(lag_p99 <= TARGET_LAG_MS)}"),
        ("catch-up lag p50 / max", f"{percentile(lag.lags_ms, 50):.0f} / "
         f"{max(lag.lags_ms, default=float('nan')):.0f} ms", "—", "—", "no target"),
    ]
    print(f"\n{stored:,} events, {cases:,} cases; figures agree: {'yes' if agree else 'no'}\n")
    print("| figure | value | baseline | ratio | target met? |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nload average at the end: {load()}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
