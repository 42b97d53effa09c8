"""Cases through their whole journey on the dev server, against a bare workflow (issue 3).

Why it exists: every officer's action goes client → Temporal update → validator (the domain's
rules) → handler under a lock → local activity appending hash-chained events → fold → search
attributes → answer. This measures what that whole path costs next to the least a Temporal
case could do: `bare_workflow.BareCase`, whose update runs one activity inserting one plain
row, as issue 3 specifies its baseline (`--bare local-activity`: a local activity instead, a
stricter reference, since the engine appends through a local activity too). The bare makes
15 updates a case (the start with its first update, then 14 actions); the engine's journey
is `application.journey.journey()` with its default hand-picked team, which since the
four-eyes rule also needs its approval: 16 updates (15 actions) and 17 events, at the same
concurrency, on the same store's database. Each side's worker is a process of its own, as
deployed (the engine's is `cases-worker` itself, logging JSON as in production; the bare's
`bench/bare_worker.py`), and this process only drives the cases, as officers' tools would;
`--workers in-process` puts both workers in this process instead, as earlier runs did. The
targets: the engine at 1.0 or more of the bare workflow's cases per second, and its p50
update latency no worse.

Run it from the repository root. It starts its own dev server; 500 cases take about 4 minutes on
a busy 2-core machine, so `--cases 100` is the quick look:

    .venv/bin/python bench/journey.py                       # 500 cases, 50 at a time, SQLite
    .venv/bin/python bench/journey.py --bare local-activity # the stricter baseline
    .venv/bin/python bench/journey.py --cases 100 --concurrency 20
    .venv/bin/python bench/journey.py --worker-processes 2  # two worker processes a side
    .venv/bin/python bench/journey.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The sides take turns in rounds, so a load that comes and goes falls on both; beside cases/s
and update latency it prints CPU milliseconds per case, of the clients (this process), of the
side's worker process and of the dev server, which a shared machine disturbs far less than
wall-clock figures.
SQLite lives in a temporary file; PostgreSQL gets a schema of its own, dropped at the end.
A case is a real council's slot: current English councils from the register in
/work/shared/data (`--councils-csv`), taking one kind of case after another once every
council has a corporate peer challenge, since a council holds one open case of each kind.
They are imported into the store's register first (a case opens only for a council in it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import functools
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
import structlog
import temporalio
from bare_workflow import (
    BARE_MODES,
    DESCRIPTIONS,
    STEPS_PER_CASE,
    BareCase,
    BareMode,
    BareStart,
    build_bare_worker,
    count_rows,
    create_table,
)
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import journey
from domain.councils import BUILT_IN_COUNCILS, Council, parse_register
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore, open_store
from eventstore.config import normalise_url
from eventstore.councils import import_councils
from eventstore.schema import events
from runtime import logging as case_logging
from runtime.binaries import temporal_cli
from runtime.converter import signed_converter
from runtime.signing import command_key
from worker import build_worker
from workflows.search_attributes import ALL as ALL_SEARCH_ATTRIBUTES

COUNCILS_CSV = Path("/work/shared/data/uk_local_authorities_current.csv")
NOT_COUNCILS = {"COMB", "SRA"}
"""Combined and strategic authorities (the GLA) are set aside: they are not councils."""

KINDS = [CaseKind.CORPORATE_PEER_CHALLENGE,
         *(k for k in CaseKind if k != CaseKind.CORPORATE_PEER_CHALLENGE)]
ACTOR = "officer:bench"
TARGET_RATE_RATIO = 1.0
TARGET_P50_RATIO = 1.0
ENGINE_ROWS_PER_CASE = 17
"""Events an engine case stores: the request, one per action, and the hand-picked team
recorded with its approval."""
WHERE_WORKERS = {"processes": "in processes of their own", "in-process": "in this process"}


# --- the cases ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    """One open-case slot: a council and a kind of case."""

    council: str
    kind: CaseKind


def councils(path: Path) -> list[str]:
    """Current English councils' GSS codes; made-up well-formed codes if the file is absent."""
    if not path.exists():
        print(f"note: {path} not found; using made-up GSS codes E99000001…", file=sys.stderr)
        return [f"E99{i:06d}" for i in range(1, 1001)]
    with path.open(newline="", encoding="utf-8") as file:
        return sorted(row["gss-code"] for row in csv.DictReader(file)
                      if row["nation"] == "England" and row["current-authority"] == "True"
                      and row["local-authority-type"] not in NOT_COUNCILS)


def register(store: EventStore, codes: Sequence[str], path: Path) -> None:
    """Put the councils `codes` in the store's register: from the register file, or made up
    (as `councils` made their codes up) when it is absent."""
    wanted = set(codes) - set(BUILT_IN_COUNCILS)
    if path.exists():
        with path.open(newline="", encoding="utf-8") as file:
            found = [c for c in parse_register(csv.DictReader(file)) if c.gss_code in wanted]
    else:
        found = [Council(gss_code=code, code="BENCH", name=f"Bench {code}",
                         short_name=f"Bench {code}", type="UA", nation="England")
                 for code in sorted(wanted)]
    import_councils(store, found)


def slots(codes: Sequence[str], n: int) -> list[Slot]:
    """`n` distinct slots: every council's corporate peer challenge first, then other kinds."""
    every = [Slot(council, kind) for kind in KINDS for council in codes]
    if n > len(every):
        raise SystemExit(f"at most {len(every)} cases: {len(codes)} councils × {len(KINDS)} kinds")
    return every[:n]


# --- measuring ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    name: str
    cases: int
    seconds: float
    latencies: list[float]
    """Seconds per update: the start with its first update counts as one."""
    cpu: float
    """CPU seconds of this process: the clients (and, in-process, both workers)."""
    worker_cpu: float
    """CPU seconds of the side's worker process (0 when the workers run in this process)."""
    server_cpu: float
    """CPU seconds of the dev server; NaN where it could not be read."""

    @property
    def cpu_ms_per_case(self) -> float:
        return self.cpu / self.cases * 1000

    @property
    def worker_cpu_ms_per_case(self) -> float:
        return self.worker_cpu / self.cases * 1000

    @property
    def total_cpu_ms_per_case(self) -> float:
        return (self.cpu + self.worker_cpu + self.server_cpu) / self.cases * 1000

    @property
    def server_cpu_ms_per_case(self) -> float:
        return self.server_cpu / self.cases * 1000

    @property
    def rate(self) -> float:
        return self.cases / self.seconds

    @property
    def updates_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99(self) -> float:
        return self.percentile(99)


CaseRun = Callable[[Slot], Awaitable[list[float]]]


async def drive(name: str, run_case: CaseRun, work: Sequence[Slot], concurrency: int,
                worker_cpu: Callable[[], float]) -> Figures:
    """Run every case of `work`, `concurrency` at a time; each case's updates in order."""
    pending = iter(work)
    latencies: list[float] = []

    async def runner() -> None:
        for slot in pending:
            latencies.extend(await run_case(slot))

    started, cpu, server_cpu = time.perf_counter(), time.process_time(), dev_server_cpu()
    worker = worker_cpu()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(work))):
            group.create_task(runner())
    return Figures(name, len(work), time.perf_counter() - started, latencies,
                   time.process_time() - cpu, worker_cpu() - worker,
                   dev_server_cpu() - server_cpu)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process `pid`, from /proc; NaN if gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return math.nan


def dev_server_cpu() -> float:
    """CPU seconds (user + system) of our child `temporal` process, from /proc; NaN if none.

    CPU per case is what a busy shared machine disturbs least: wall-clock figures move with
    whatever else runs, the work each case costs does not."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for stat in Path("/proc").glob("[0-9]*/stat"):
            fields = stat.read_text().rsplit(")", 1)
            if fields[0].endswith("(temporal") and int(fields[1].split()[1]) == os.getpid():
                return process_cpu(int(stat.parent.name))  # our child (its ppid is us)
    return math.nan


def engine_updates(cases: CaseClient, today: date) -> CaseRun:
    """A case through `CaseClient`, as officers' tools drive it: `start`, then every command of
    the journey (the default, hand-picked team and its approval: 15 actions) through `act`."""
    async def run_case(slot: Slot) -> list[float]:
        commands = list(journey(slot.council, today, officer=ACTOR))
        took = []
        started = time.perf_counter()
        view = await cases.start(council=slot.council, kind=slot.kind, actor=ACTOR,
                                 reason="Benchmark: a whole journey", scope=["finance"],
                                 budget_gap_pence=420_000_000)
        took.append(time.perf_counter() - started)
        for command in commands:
            started = time.perf_counter()
            view = await cases.act(view.state.case_id, command)
            took.append(time.perf_counter() - started)
        if view.state.stage != Stage.CLOSED:
            raise RuntimeError(f"{view.state.case_id} ended at {view.state.stage}")
        return took
    return run_case


def bare_updates(client: Client, task_queue: str, run_id: str, mode: BareMode) -> CaseRun:
    async def run_case(slot: Slot) -> list[float]:
        key = f"{slot.kind.value}-{slot.council}-{run_id}"
        took = []
        started = time.perf_counter()
        handle = await client.start_workflow(BareCase.run, BareStart(case_key=key, mode=mode),
                                             id=f"bare-{key}", task_queue=task_queue)
        await handle.execute_update(BareCase.act, 0)
        took.append(time.perf_counter() - started)
        for step in range(1, STEPS_PER_CASE):
            started = time.perf_counter()
            await handle.execute_update(BareCase.act, step)
            took.append(time.perf_counter() - started)
        return took
    return run_case


# --- the database ---------------------------------------------------------------------------

@contextlib.contextmanager
def bench_store(url: str | None) -> Iterator[tuple[EventStore, str]]:
    """A migrated store on a temporary SQLite file, or in a fresh PostgreSQL schema; with
    the URL that reaches it from another process."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="bench-journey-") as directory:
            url = f"sqlite:///{directory}/cases.db"
            store = open_store(url)
            store.migrate()
            try:
                yield store, url
            finally:
                store.dispose()
        return
    url = normalise_url(url)
    if not url.startswith("postgresql"):
        raise SystemExit(f"--database-url: only postgresql is meant here, not {url!r}")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    store = open_store(url, connect_args={"options": f"-csearch_path={schema}"},
                       pool_size=16, max_overflow=4)
    elsewhere = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        store.migrate()
        yield store, elsewhere.render_as_string(hide_password=False)
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def count_events(store: EventStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


# --- the run --------------------------------------------------------------------------------

@contextlib.contextmanager
def quiet_logs(enabled: bool) -> Iterator[None]:
    """Production's JSON logs, rendered as in production but written to /dev/null; or off."""
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        sink: TextIO = devnull
        case_logging.configure("json", level=logging.INFO if enabled else logging.WARNING)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sink))
        yield


@contextlib.asynccontextmanager
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), search_attributes=ALL_SEARCH_ATTRIBUTES,
        data_converter=signed_converter(command_key()), ui=False, dev_server_log_level="error")
    async with env:
        yield env


@dataclass
class Side:
    """One side of the comparison: how it runs a case, how many rows it must leave, and how
    much CPU its worker process has used (0 for a worker in this process)."""

    name: str
    run_case: CaseRun
    stored: Callable[[], int]
    worker_cpu: Callable[[], float]
    rows_per_case: int
    rounds: list[Figures] = field(default_factory=list)

    def total(self) -> Figures:
        return Figures(self.name, sum(r.cases for r in self.rounds),
                       sum(r.seconds for r in self.rounds),
                       [t for r in self.rounds for t in r.latencies],
                       sum(r.cpu for r in self.rounds), sum(r.worker_cpu for r in self.rounds),
                       sum(r.server_cpu for r in self.rounds))


# --- the workers ----------------------------------------------------------------------------

WorkerCpu = dict[str, Callable[[], float]]
"""CPU seconds used so far by each side's worker process, by side name."""


@contextlib.asynccontextmanager
async def workers_in_this_process(client: Client, store: EventStore, queues: dict[str, str]
                                  ) -> AsyncIterator[WorkerCpu]:
    async with (build_bare_worker(client, store.engine, queues["bare"]),
                build_worker(client, store, queues["engine"])):
        yield {"bare": lambda: 0.0, "engine": lambda: 0.0}


@contextlib.asynccontextmanager
async def worker_processes(client: Client, store_url: str, queues: dict[str, str],
                           logs: Path, per_side: int = 1) -> AsyncIterator[WorkerCpu]:
    """Each side's workers in processes of their own (`per_side` each, on the side's one task
    queue, as a deployment scales out), all configured from the environment as a deployment
    is: the engine's is `cases-worker` (worker.py), the bare's bench/bare_worker.py. All are
    polling before this yields; all finish their tasks in hand when it exits."""
    address = client.service_client.config.target_host
    environment = {**os.environ, "TEMPORAL_ADDRESS": address,
                   "TEMPORAL_NAMESPACE": client.namespace, "CASES_DATABASE_URL": store_url}
    here = Path(__file__).resolve().parent
    commands = {
        "bare": [sys.executable, str(here / "bare_worker.py"), "--task-queue", queues["bare"]],
        "engine": [sys.executable, str(here.parent / "worker.py"), "--log-format", "json",
                   "--task-queue", queues["engine"]],
    }
    started: dict[str, list[tuple[subprocess.Popen[bytes], Path]]] = {n: [] for n in commands}
    try:
        for name, command in commands.items():
            for number in range(per_side):
                path = logs / f"{name}-worker-{number}.log"
                with path.open("wb") as log:
                    started[name].append((subprocess.Popen(
                        command, env=environment, cwd=here.parent, stdout=log,
                        stderr=subprocess.STDOUT), path))
        for name in commands:
            await until_polled(client, queues[name], started[name])
        yield {name: functools.partial(processes_cpu, [process.pid for process, _ in workers])
               for name, workers in started.items()}
    finally:
        every = [process for workers in started.values() for process, _ in workers]
        for process in every:
            process.terminate()
        for process in every:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def processes_cpu(pids: Sequence[int]) -> float:
    return sum(process_cpu(pid) for pid in pids)


async def until_polled(client: Client, queue: str,
                       workers: Sequence[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Wait until `queue` has a workflow poller and an activity poller from every worker (each
    given with its log, shown if it exits first)."""
    kinds = [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for worker, log in workers:
            if worker.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"a worker for {queue} exited ({worker.returncode}):\n{tail}")
        described = [await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=client.namespace,
                                     task_queue=TaskQueue(name=queue), task_queue_type=kind))
            for kind in kinds]
        if all(len({p.identity for p in d.pollers}) >= len(workers) for d in described):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"not every worker polled {queue} within 60 s "
                     f"(their output: {', '.join(str(log) for _, log in workers)})")


def chunks(work: Sequence[Slot], n: int) -> list[Sequence[Slot]]:
    size = -(-len(work) // n)
    return [work[i:i + size] for i in range(0, len(work), size)]


async def compare(sides: Sequence[Side], work: Sequence[Slot], warmup: Sequence[Slot],
                  concurrency: int, rounds: int, cases_before: int) -> None:
    """Warm each side up, then run the work in rounds, alternating which side goes first
    (ABBA…), so that a load that comes and goes on the machine falls on both sides alike.
    Afterwards each side must have stored its rows a case for `cases_before` (the warm-up's
    among them) and for the work."""
    for side in sides:
        if warmup:
            await drive("warm-up", side.run_case, warmup, concurrency, side.worker_cpu)
    for number, chunk in enumerate(chunks(work, rounds)):
        for side in sides if number % 2 == 0 else list(reversed(sides)):
            side.rounds.append(await drive(side.name, side.run_case, chunk, concurrency,
                                           side.worker_cpu))
            figures = side.rounds[-1]
            print(f"  round {number + 1} {side.name:6} {figures.cases:>4} cases "
                  f"{figures.rate:6.2f}/s  p50 {figures.p50:7.1f} ms  cpu "
                  f"{figures.cpu_ms_per_case:4.0f} + {figures.worker_cpu_ms_per_case:4.0f} + "
                  f"{figures.server_cpu_ms_per_case:4.0f} ms/case  ({load()})", flush=True)
    for side in sides:
        expected = side.rows_per_case * (cases_before + len(work))
        if (stored := side.stored()) != expected:
            raise RuntimeError(f"{side.name}: {stored} rows stored, {expected} expected")


async def run(client: Client, store: EventStore, store_url: str, args: argparse.Namespace,
              work: Sequence[Slot], warmup: Sequence[Slot]) -> list[tuple[int, list[Figures]]]:
    """Both workers run throughout (an idle one only long-polls); the bare side first. Each
    level of concurrency is a comparison of its own, on the same slots (every case closes, so a
    council's slot is free again: the engine's case ids gain a suffix, -2, -3, …)."""
    queues = {"engine": f"bench-engine-{uuid.uuid4().hex[:8]}",
              "bare": f"bench-bare-{uuid.uuid4().hex[:8]}"}
    today = datetime.now(UTC).date()
    create_table(store.engine)
    cases = CaseClient(client, task_queue=queues["engine"], store=store)
    with tempfile.TemporaryDirectory(prefix="bench-journey-logs-") as logs:
        workers: AbstractAsyncContextManager[WorkerCpu] = (
            workers_in_this_process(client, store, queues) if args.workers == "in-process"
            else worker_processes(client, store_url, queues, Path(logs),
                                  args.worker_processes))
        async with workers as worker_cpu:
            return await compare_levels(client, store, cases, args, work, warmup, queues,
                                        worker_cpu, today)


async def compare_levels(client: Client, store: EventStore, cases: CaseClient,
                         args: argparse.Namespace, work: Sequence[Slot],
                         warmup: Sequence[Slot], queues: dict[str, str], worker_cpu: WorkerCpu,
                         today: date) -> list[tuple[int, list[Figures]]]:
    results = []
    for number, concurrency in enumerate(args.concurrency):
        sides = []
        if args.only in (None, "bare"):
            sides.append(Side("bare", bare_updates(client, queues["bare"],
                                                   uuid.uuid4().hex[:6], args.bare),
                              lambda: count_rows(store.engine), worker_cpu["bare"],
                              STEPS_PER_CASE))
        if args.only in (None, "engine"):
            sides.append(Side("engine", engine_updates(cases, today),
                              lambda: count_events(store), worker_cpu["engine"],
                              ENGINE_ROWS_PER_CASE))
        print(f"{concurrency} at a time:", flush=True)
        await compare(sides, work, warmup if number == 0 else [], concurrency, args.rounds,
                      cases_before=number * len(work) + len(warmup))
        results.append((concurrency, [side.total() for side in sides]))
    return results


def render(figures: Sequence[Figures]) -> str:
    """The table; CPU is milliseconds per case: of the clients (this process), of the side's
    worker process and of the dev server, and their sum."""
    lines = [f"{'':8} {'cases':>6} {'seconds':>8} {'cases/s':>8} {'updates/s':>10} "
             f"{'p50 ms':>8} {'p99 ms':>8}   cpu ms/case: {'clients':>7} {'worker':>7} "
             f"{'server':>7} {'total':>7}"]
    lines += [f"{f.name:8} {f.cases:>6} {f.seconds:>8.1f} {f.rate:>8.2f} "
              f"{f.updates_per_second:>10.1f} {f.p50:>8.1f} {f.p99:>8.1f} {'':15}"
              f"{f.cpu_ms_per_case:>7.0f} {f.worker_cpu_ms_per_case:>7.0f} "
              f"{f.server_cpu_ms_per_case:>7.0f} {f.total_cpu_ms_per_case:>7.0f}"
              for f in figures]
    return "\n".join(lines)


def verdict(engine: Figures, bare: Figures) -> str:
    rate = engine.rate / bare.rate
    p50 = engine.p50 / bare.p50
    ok_rate = "met" if rate >= TARGET_RATE_RATIO else "MISSED"
    ok_p50 = "met" if p50 <= TARGET_P50_RATIO else "MISSED"
    return "\n".join([
        f"engine/bare cases per second:   {rate:.2f} (target >= {TARGET_RATE_RATIO}: {ok_rate})",
        f"engine p50 / bare p50:          {p50:.2f} (target <= {TARGET_P50_RATIO}: {ok_p50})",
        f"engine p99 / bare p99:          {engine.p99 / bare.p99:.2f}",
        f"engine/bare CPU per case:       {engine.cpu / bare.cpu:.2f} (clients), "
        + (f"{engine.worker_cpu / bare.worker_cpu:.2f} (worker), " if bare.worker_cpu else "")
        + f"{engine.server_cpu / bare.server_cpu:.2f} (dev server), "
        f"{engine.total_cpu_ms_per_case / bare.total_cpu_ms_per_case:.2f} (all)",
    ])


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


async def bench(args: argparse.Namespace) -> int:
    codes = councils(args.councils_csv)
    every = slots(codes, args.warmup + args.cases)
    warmup, work = every[:args.warmup], every[args.warmup:]
    with quiet_logs(not args.no_logs), bench_store(args.database_url) as (store, store_url):
        register(store, sorted({slot.council for slot in every}), args.councils_csv)
        database = store.engine.url.render_as_string(hide_password=True)
        print(f"{os.cpu_count()} cores, {platform.platform()}, Python "
              f"{platform.python_version()}, temporalio {temporalio.__version__}\n"
              f"{args.cases} cases (+{args.warmup} warm-up), {STEPS_PER_CASE} updates each, "
              f"{', '.join(map(str, args.concurrency))} at a time, in {args.rounds} rounds "
              f"each; store {database}; "
              f"workers {WHERE_WORKERS[args.workers]}"
              f"{f' ({args.worker_processes} a side)' if args.worker_processes > 1 else ''}, "
              f"dev server {temporal_cli()}\n"
              f"baseline (--bare {args.bare}): bare workflow, {DESCRIPTIONS[args.bare]}\n"
              f"at the start: {load()}", flush=True)
        async with dev_server() as env:
            results = await run(env.client, store, store_url, args, work, warmup)
    print(f"at the end: {load()}")
    for concurrency, figures in results:
        print(f"\n{concurrency} at a time:\n" + render(figures))
        if len(figures) == 2:
            print(f"against the {args.bare} baseline:\n"
                  + verdict(engine=figures[1], bare=figures[0]))
    if len(results) > 1 and all(len(figures) == 2 for _, figures in results):
        print("\nengine / bare   " + "  ".join(f"{c:>6} at a time" for c, _ in results))
        print("cases per second" + "".join(f"{f[1].rate / f[0].rate:>16.2f}" for _, f in results))
        print("p50 update      " + "".join(f"{f[1].p50 / f[0].p50:>16.2f}" for _, f in results))
    return 0


def levels(text: str) -> list[int]:
    """`--concurrency`: one positive number, or several separated by commas."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or list of numbers: {text!r}") from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"each level must be 1 or more: {text!r}")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=500, help="cases measured (default 500)")
    parser.add_argument("--concurrency", type=levels, default=[50],
                        help="cases in flight at once; a comma-separated list runs one "
                             "comparison per level, e.g. 1,10,50 (default 50)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="cases run first and not measured, for each side (default 20)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds the cases are split into, the sides taking turns to go "
                             "first (default 4)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL; a fresh schema is made there and dropped after "
                             "(default: a temporary SQLite file)")
    parser.add_argument("--councils-csv", type=Path, default=COUNCILS_CSV)
    parser.add_argument("--only", choices=["engine", "bare"], default=None,
                        help="run one side only (for profiling)")
    parser.add_argument("--bare", choices=BARE_MODES, default="activity",
                        help="the baseline's update: one ordinary activity, as issue 3 "
                             "specifies (default), or one local activity (stricter)")
    parser.add_argument("--workers", choices=["processes", "in-process"], default="processes",
                        help="each side's worker in a process of its own, as deployed "
                             "(default), or both in this process beside the clients")
    parser.add_argument("--worker-processes", type=int, default=1,
                        help="worker processes per side, on the side's one task queue "
                             "(default 1)")
    parser.add_argument("--no-logs", action="store_true",
                        help="diagnostic: drop the engine's INFO logs instead of rendering "
                             "them (with --workers in-process only)")
    args = parser.parse_args(argv)
    if min(args.cases, args.rounds) < 1 or args.warmup < 0:
        parser.error("--cases and --rounds must be positive, --warmup not negative")
    if args.worker_processes < 1:
        parser.error("--worker-processes must be 1 or more")
    if args.worker_processes > 1 and args.workers == "in-process":
        parser.error("--worker-processes needs --workers processes")
    if args.no_logs and args.workers != "in-process":
        parser.error("--no-logs needs --workers in-process (cases-worker always logs)")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
