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

`--through-api` compares two doors to the same engine instead of engine and bare: the direct
client (`CaseClient`, as above; side "direct") and the HTTP API as deployed (side "api"):
`cases serve` in a process of its own, configured from the environment as the worker is
(CASES_DATABASE_URL, TEMPORAL_ADDRESS, the same CASES_COMMAND_KEY_FILE), the bench sending each
request with httpx (one AsyncClient, a pooled keep-alive connection per case in flight) as the
user its actor names: an officer, an LGA adviser (the approval) and each council's contact,
made in the store first as `cases users add` makes them. Both ways run the same journey as the
same actors, against the same worker process on the API's task queue and the same store, at
the same concurrency, taking turns as above; each takes alternate councils of the register, so
that their cases never share a slot. Beside the figures above it prints journey latency
(start to close), per-action latency, the API process's CPU per case, and the ratios API/direct
against the target (p50 through the API at most 15 % above the direct client's):

    .venv/bin/python bench/journey.py --through-api --cases 200 --concurrency 50
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

import httpx
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
from journey_api import (
    OFFICER,
    ApiProcess,
    add_users,
    api_process,
    journey_as_users,
    process_cpu,
)
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from domain.councils import BUILT_IN_COUNCILS, Council, parse_register
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore, open_store
from eventstore.config import normalise_url
from eventstore.councils import import_councils
from eventstore.schema import events
from runtime import logging as case_logging
from runtime.binaries import temporal_cli
from runtime.converter import signed_converter
from runtime.signing import KEY_FILE_VARIABLE, command_key, write_key
from worker import build_worker
from workflows.messages import TASK_QUEUE, CaseView, council_of_case
from workflows.search_attributes import ALL as ALL_SEARCH_ATTRIBUTES

COUNCILS_CSV = Path("/work/shared/data/uk_local_authorities_current.csv")
NOT_COUNCILS = {"COMB", "SRA"}
"""Combined and strategic authorities (the GLA) are set aside: they are not councils."""

KINDS = [CaseKind.CORPORATE_PEER_CHALLENGE,
         *(k for k in CaseKind if k != CaseKind.CORPORATE_PEER_CHALLENGE)]
TARGET_RATE_RATIO = 1.0
TARGET_P50_RATIO = 1.0
TARGET_API_P50_RATIO = 1.15
"""Through the API, p50 at most 15 % above the direct client's."""
KEEPALIVE_SECONDS = 2.0
"""How long the bench keeps an idle connection to the API: less than uvicorn's 5 s, lest it
send a request on a connection the server is closing at that moment."""
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

def percentile(values: Sequence[float], q: int) -> float:
    """The `q`th percentile of `values`, in milliseconds."""
    if q == 50:
        return statistics.median(values) * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


@dataclass(frozen=True)
class Figures:
    name: str
    cases: int
    seconds: float
    journeys: list[list[float]]
    """Seconds per update, case by case, in the journey's order: the start with its first
    update counts as one."""
    cpu: float
    """CPU seconds of this process: the clients (and, in-process, both workers)."""
    worker_cpu: float
    """CPU seconds of the side's worker process (0 when the workers run in this process)."""
    server_cpu: float
    """CPU seconds of the dev server; NaN where it could not be read."""
    api_cpu: float = 0.0
    """CPU seconds of the API's process (0 where the run has none)."""

    @functools.cached_property
    def latencies(self) -> list[float]:
        return [took for journey in self.journeys for took in journey]

    @functools.cached_property
    def journey_latencies(self) -> list[float]:
        """Seconds per case from its start to the answer to its last action."""
        return [sum(journey) for journey in self.journeys]

    def step(self, number: int) -> list[float]:
        """Seconds of the journey's `number`th update (0: the start), in every case."""
        return [journey[number] for journey in self.journeys]

    @property
    def cpu_ms_per_case(self) -> float:
        return self.cpu / self.cases * 1000

    @property
    def worker_cpu_ms_per_case(self) -> float:
        return self.worker_cpu / self.cases * 1000

    @property
    def server_cpu_ms_per_case(self) -> float:
        return self.server_cpu / self.cases * 1000

    @property
    def api_cpu_ms_per_case(self) -> float:
        return self.api_cpu / self.cases * 1000

    @property
    def total_cpu_ms_per_case(self) -> float:
        return (self.cpu + self.worker_cpu + self.server_cpu + self.api_cpu) / self.cases * 1000

    @property
    def rate(self) -> float:
        return self.cases / self.seconds

    @property
    def updates_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: int) -> float:
        return percentile(self.latencies, q)

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def p99(self) -> float:
        return self.percentile(99)


CaseRun = Callable[[Slot], Awaitable[list[float]]]


async def drive(side: Side, work: Sequence[Slot], concurrency: int) -> Figures:
    """Run every case of `work` on `side`, `concurrency` at a time; each case's updates in
    order."""
    pending = iter(work)
    journeys: list[list[float]] = []

    async def runner() -> None:
        for slot in pending:
            journeys.append(await side.run_case(slot))

    started, cpu, server_cpu = time.perf_counter(), time.process_time(), dev_server_cpu()
    worker, api = side.worker_cpu(), side.api_cpu()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(work))):
            group.create_task(runner())
    return Figures(side.name, len(work), time.perf_counter() - started, journeys,
                   time.process_time() - cpu, side.worker_cpu() - worker,
                   dev_server_cpu() - server_cpu, side.api_cpu() - api)


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


def engine_updates(cases: CaseClient) -> CaseRun:
    """A case through `CaseClient`, as officers' tools drive it: `start`, then every command of
    the journey (the default, hand-picked team and its approval: 15 actions) through `act`,
    dated the day the case starts."""
    async def run_case(slot: Slot) -> list[float]:
        commands = journey_as_users(slot.council, datetime.now(UTC).date())
        took = []
        started = time.perf_counter()
        view = await cases.start(council=slot.council, kind=slot.kind, actor=OFFICER.actor,
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


def api_updates(http: httpx.AsyncClient, tokens: dict[str, str]) -> CaseRun:
    """The same case over HTTP, as the command line sends it: `POST /api/cases` as the officer,
    then each command of the journey to `POST /api/cases/ID/actions` as the user its actor
    names (the body without actor or case), each answer read back into a `CaseView`."""
    signed_in = {actor: {"Authorization": f"Bearer {token}"} for actor, token in tokens.items()}

    async def run_case(slot: Slot) -> list[float]:
        requests = [(signed_in[command.actor],
                     command.model_dump(mode="json", exclude={"actor", "case_id"}))
                    for command in journey_as_users(slot.council, datetime.now(UTC).date())]
        took = []
        started = time.perf_counter()
        view = answer(await http.post("/api/cases", headers=signed_in[OFFICER.actor], json={
            "council": slot.council, "kind": slot.kind.value,
            "reason": "Benchmark: a whole journey", "scope": ["finance"],
            "budget_gap_pence": 420_000_000}))
        took.append(time.perf_counter() - started)
        actions = f"/api/cases/{view.state.case_id}/actions"
        for headers, body in requests:
            started = time.perf_counter()
            view = answer(await http.post(actions, headers=headers, json=body))
            took.append(time.perf_counter() - started)
        if view.state.stage != Stage.CLOSED:
            raise RuntimeError(f"{view.state.case_id} ended at {view.state.stage}")
        return took
    return run_case


def answer(response: httpx.Response) -> CaseView:
    if response.is_error:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: "
                           f"{response.status_code} {response.text[:500]}")
    return CaseView.model_validate_json(response.content)


def journey_steps(today: date) -> tuple[str, ...]:
    """The engine's updates by name: the start (with its first update), then each action."""
    return ("start", *(command.action for command in journey_as_users("E09000008", today)))


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


def count_events(store: EventStore, councils: set[str]) -> int:
    """Events stored for the cases of `councils` (each side of the comparison has its own)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.case_id, sa.func.count())
                            .group_by(events.c.case_id)).all()
    return sum(int(n) for case_id, n in rows if council_of_case(case_id) in councils)


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
    """One side of the comparison: how it runs a case, on which slots, how many rows it must
    leave, and how much CPU its worker process (0 for a worker in this process) and the API's
    process (0 where there is none) have used."""

    name: str
    run_case: CaseRun
    warmup: Sequence[Slot]
    work: Sequence[Slot]
    stored: Callable[[], int]
    worker_cpu: Callable[[], float]
    rows_per_case: int
    api_cpu: Callable[[], float] = lambda: 0.0
    rounds: list[Figures] = field(default_factory=list)

    def total(self) -> Figures:
        return Figures(self.name, sum(r.cases for r in self.rounds),
                       sum(r.seconds for r in self.rounds),
                       [journey for r in self.rounds for journey in r.journeys],
                       sum(r.cpu for r in self.rounds), sum(r.worker_cpu for r in self.rounds),
                       sum(r.server_cpu for r in self.rounds),
                       sum(r.api_cpu for r in self.rounds))


# --- the workers ----------------------------------------------------------------------------

WorkerCpu = dict[str, Callable[[], float]]
"""CPU seconds used so far by each side's worker process, by side name."""


@contextlib.asynccontextmanager
async def workers_in_this_process(client: Client, store: EventStore, queues: dict[str, str]
                                  ) -> AsyncIterator[WorkerCpu]:
    async with contextlib.AsyncExitStack() as workers:
        if "bare" in queues:
            await workers.enter_async_context(
                build_bare_worker(client, store.engine, queues["bare"]))
        if "engine" in queues:
            await workers.enter_async_context(build_worker(client, store, queues["engine"]))
        yield {name: lambda: 0.0 for name in queues}


@contextlib.asynccontextmanager
async def worker_processes(client: Client, store_url: str, queues: dict[str, str],
                           logs: Path, per_side: int = 1) -> AsyncIterator[WorkerCpu]:
    """Each side's workers in processes of their own (`per_side` each, on the side's one task
    queue, as a deployment scales out), all configured from the environment as a deployment
    is: the engine's is `cases-worker` (worker.py), the bare's bench/bare_worker.py. All are
    polling before this yields; all finish their tasks in hand when it exits."""
    environment = deployment_environment(client, store_url)
    here = Path(__file__).resolve().parent
    programs = {
        "bare": [sys.executable, str(here / "bare_worker.py")],
        "engine": [sys.executable, str(here.parent / "worker.py"), "--log-format", "json"],
    }
    commands = {name: [*programs[name], "--task-queue", queue] for name, queue in queues.items()}
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


def deployment_environment(client: Client, store_url: str) -> dict[str, str]:
    """What a deployment's worker and API processes are configured by: Temporal's address and
    namespace, the store's URL, and (already in ours) CASES_COMMAND_KEY_FILE."""
    return {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace, "CASES_DATABASE_URL": store_url}


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


async def compare(sides: Sequence[Side], concurrency: int, rounds: int, level: int) -> None:
    """Warm each side up (at the first level only), then run its work in rounds, alternating
    which side goes first (ABBA…), so that a load that comes and goes on the machine falls on
    both sides alike. Afterwards each side must have stored its rows a case for its warm-up
    and for its work at each level so far."""
    for side in sides:
        if side.warmup and level == 0:
            await drive(side, side.warmup, concurrency)
    split = [chunks(side.work, rounds) for side in sides]
    for number in range(len(split[0])):
        order = range(len(sides)) if number % 2 == 0 else reversed(range(len(sides)))
        for which in order:
            side = sides[which]
            side.rounds.append(await drive(side, split[which][number], concurrency))
            figures = side.rounds[-1]
            api = f" + {figures.api_cpu_ms_per_case:4.0f}" if figures.api_cpu else ""
            print(f"  round {number + 1} {side.name:6} {figures.cases:>4} cases "
                  f"{figures.rate:6.2f}/s  p50 {figures.p50:7.1f} ms  cpu "
                  f"{figures.cpu_ms_per_case:4.0f} + {figures.worker_cpu_ms_per_case:4.0f} + "
                  f"{figures.server_cpu_ms_per_case:4.0f}{api} ms/case  ({load()})", flush=True)
    for side in sides:
        expected = side.rows_per_case * (len(side.warmup) + (level + 1) * len(side.work))
        if (stored := side.stored()) != expected:
            raise RuntimeError(f"{side.name}: {stored} rows stored, {expected} expected")


@dataclass(frozen=True)
class Plan:
    """What a run compares: the sides by name, each with its warm-up and measured slots."""

    slots: dict[str, tuple[Sequence[Slot], Sequence[Slot]]]

    @property
    def councils(self) -> list[str]:
        return sorted({slot.council for warmup, work in self.slots.values()
                       for slot in (*warmup, *work)})


def plan(args: argparse.Namespace, codes: Sequence[str]) -> Plan:
    """Engine and bare on the same slots (the bare's workflow ids are its own); through the
    API, the direct client and the API each on councils of its own (alternate ones of the
    register), so that neither opens a case in a slot the other holds."""
    names = ["direct", "api"] if args.through_api else ["bare", "engine"]
    names = [name for name in names if args.only in (None, name)
             or (args.only == "engine" and name == "direct")]
    per_side = args.warmup + args.cases
    if not args.through_api:
        every = slots(codes, per_side)
        return Plan({name: (every[:args.warmup], every[args.warmup:]) for name in names})
    mine = {name: slots(codes[number::2], per_side) for number, name in enumerate(names)}
    return Plan({name: (taken[:args.warmup], taken[args.warmup:])
                 for name, taken in mine.items()})


async def run(client: Client, store: EventStore, store_url: str, args: argparse.Namespace,
              work: Plan, tokens: dict[str, str]) -> list[tuple[int, list[Figures]]]:
    """The workers (and the API) run throughout (an idle one only long-polls); the bare side
    first, or the direct client before the API. Each level of concurrency is a comparison of
    its own, on the same slots (every case closes, so a council's slot is free again: the
    engine's case ids gain a suffix, -2, -3, …). The engine's worker polls the API's task
    queue, the one `cases serve` sends to (this dev server is the bench's own)."""
    queues = {}
    if "bare" in work.slots:
        queues["bare"] = f"bench-bare-{uuid.uuid4().hex[:8]}"
    if work.slots.keys() - {"bare"}:
        queues["engine"] = TASK_QUEUE
    create_table(store.engine)
    with tempfile.TemporaryDirectory(prefix="bench-journey-logs-") as logs:
        workers: AbstractAsyncContextManager[WorkerCpu] = (
            workers_in_this_process(client, store, queues) if args.workers == "in-process"
            else worker_processes(client, store_url, queues, Path(logs),
                                  args.worker_processes))
        api: AbstractAsyncContextManager[ApiProcess | None] = (
            api_process(deployment_environment(client, store_url), Path(logs))
            if "api" in work.slots else contextlib.nullcontext())
        async with workers as worker_cpu, api as served:
            sides = Sides(client, store, args, work, queues, worker_cpu, served, tokens)
            if served is None:
                return await compare_levels(sides)
            pool = max(args.concurrency)
            async with httpx.AsyncClient(
                    base_url=served.url, timeout=httpx.Timeout(120),
                    limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool,
                                        keepalive_expiry=KEEPALIVE_SECONDS)) as http:
                sides.http = http
                return await compare_levels(sides)


@dataclass
class Sides:
    """What the sides are made from: the run's Temporal client, store, workers, API, users."""

    client: Client
    store: EventStore
    args: argparse.Namespace
    work: Plan
    queues: dict[str, str]
    worker_cpu: WorkerCpu
    api: ApiProcess | None
    tokens: dict[str, str]
    http: httpx.AsyncClient | None = None

    def side(self, name: str) -> Side:
        warmup, work = self.work.slots[name]
        councils = {slot.council for slot in (*warmup, *work)}
        api_cpu = self.api.cpu if self.api is not None else (lambda: 0.0)
        if name == "bare":
            return Side(name, bare_updates(self.client, self.queues["bare"],
                                           uuid.uuid4().hex[:6], self.args.bare),
                        warmup, work, lambda: count_rows(self.store.engine),
                        self.worker_cpu["bare"], STEPS_PER_CASE, api_cpu)
        if name == "api":
            assert self.http is not None
            run_case = api_updates(self.http, self.tokens)
        else:
            run_case = engine_updates(CaseClient(self.client, task_queue=self.queues["engine"],
                                                 store=self.store))
        return Side(name, run_case, warmup, work,
                    lambda: count_events(self.store, councils), self.worker_cpu["engine"],
                    ENGINE_ROWS_PER_CASE, api_cpu)


async def compare_levels(sides: Sides) -> list[tuple[int, list[Figures]]]:
    results = []
    for number, concurrency in enumerate(sides.args.concurrency):
        these = [sides.side(name) for name in sides.work.slots]
        print(f"{concurrency} at a time:", flush=True)
        await compare(these, concurrency, sides.args.rounds, number)
        results.append((concurrency, [side.total() for side in these]))
    return results


def render(figures: Sequence[Figures]) -> str:
    """The table; CPU is milliseconds per case: of the clients (this process), of the side's
    worker process, of the dev server and (where there is one) of the API's process, and
    their sum."""
    api = any(f.api_cpu for f in figures)
    lines = [f"{'':8} {'cases':>6} {'seconds':>8} {'cases/s':>8} {'updates/s':>10} "
             f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   cpu ms/case: {'clients':>7} "
             f"{'worker':>7} {'server':>7}" + (f" {'api':>7}" if api else "") + f" {'total':>7}"]
    lines += [f"{f.name:8} {f.cases:>6} {f.seconds:>8.1f} {f.rate:>8.2f} "
              f"{f.updates_per_second:>10.1f} {f.p50:>8.1f} {f.p95:>8.1f} {f.p99:>8.1f} {'':15}"
              f"{f.cpu_ms_per_case:>7.0f} {f.worker_cpu_ms_per_case:>7.0f} "
              f"{f.server_cpu_ms_per_case:>7.0f}"
              + (f" {f.api_cpu_ms_per_case:>7.0f}" if api else "")
              + f" {f.total_cpu_ms_per_case:>7.0f}"
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


def api_verdict(api: Figures, direct: Figures, steps: Sequence[str]) -> str:
    """Through the API against the direct client: latency of an update and of a whole
    journey, rate, CPU, and each action's latency."""
    p50 = api.p50 / direct.p50
    journey_p50 = percentile(api.journey_latencies, 50) / percentile(direct.journey_latencies, 50)
    ok = "met" if p50 <= TARGET_API_P50_RATIO else "MISSED"
    ok_journey = "met" if journey_p50 <= TARGET_API_P50_RATIO else "MISSED"
    lines = [
        f"{'journey (start to close)':26} " + "  ".join(
            f"{way.name} p50 {percentile(way.journey_latencies, 50):6.0f} p95 "
            f"{percentile(way.journey_latencies, 95):6.0f} p99 "
            f"{percentile(way.journey_latencies, 99):6.0f} ms" for way in (direct, api)),
        f"api/direct p50 update:     {p50:.2f} (target <= {TARGET_API_P50_RATIO}: {ok})",
        f"api/direct p50 journey:    {journey_p50:.2f} (target <= {TARGET_API_P50_RATIO}: "
        f"{ok_journey})",
        f"api/direct p95, p99 update: {api.p95 / direct.p95:.2f}, {api.p99 / direct.p99:.2f}",
        f"api/direct cases per second: {api.rate / direct.rate:.2f}",
        f"API process CPU:           {api.api_cpu_ms_per_case:.0f} ms a case "
        f"({api.api_cpu_ms_per_case / len(steps):.1f} ms a request; "
        f"{api.api_cpu / api.seconds:.2f} of a core while the API side ran)",
        f"api/direct CPU per case:   {api.cpu / direct.cpu:.2f} (clients), "
        + (f"{api.worker_cpu / direct.worker_cpu:.2f} (worker), " if direct.worker_cpu else "")
        + f"{api.server_cpu / direct.server_cpu:.2f} (dev server), "
        f"{api.total_cpu_ms_per_case / direct.total_cpu_ms_per_case:.2f} (all)",
        f"{'per action, ms':28} {'direct p50':>10} {'api p50':>8} {'ratio':>6} "
        f"{'direct p95':>10} {'api p95':>8} {'+p50 ms':>8}",
    ]
    for number, step in enumerate(steps):
        mine, theirs = direct.step(number), api.step(number)
        lines.append(f"  {step:26} {percentile(mine, 50):>10.1f} {percentile(theirs, 50):>8.1f} "
                     f"{percentile(theirs, 50) / percentile(mine, 50):>6.2f} "
                     f"{percentile(mine, 95):>10.1f} {percentile(theirs, 95):>8.1f} "
                     f"{percentile(theirs, 50) - percentile(mine, 50):>8.1f}")
    return "\n".join(lines)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def shared_command_key() -> Iterator[None]:
    """The key this process, the workers and the API sign commands with: a fresh one in a
    temporary file, in CASES_COMMAND_KEY_FILE for every process the bench starts (unless it
    is set already)."""
    if os.environ.get(KEY_FILE_VARIABLE, "").strip():
        yield
        return
    with tempfile.TemporaryDirectory(prefix="bench-journey-key-") as directory:
        path = Path(directory) / "command.key"
        write_key(path)
        os.environ[KEY_FILE_VARIABLE] = str(path)
        try:
            yield
        finally:
            del os.environ[KEY_FILE_VARIABLE]


async def bench(args: argparse.Namespace) -> int:
    work = plan(args, councils(args.councils_csv))
    with (quiet_logs(not args.no_logs), shared_command_key(),
          bench_store(args.database_url) as (store, store_url)):
        register(store, work.councils, args.councils_csv)
        tokens = add_users(store, work.councils) if "api" in work.slots else {}
        database = store.engine.url.render_as_string(hide_password=True)
        print(f"{os.cpu_count()} cores, {platform.platform()}, Python "
              f"{platform.python_version()}, temporalio {temporalio.__version__}\n"
              f"{args.cases} cases (+{args.warmup} warm-up) a side ({', '.join(work.slots)}), "
              f"{', '.join(map(str, args.concurrency))} at a time, in {args.rounds} rounds "
              f"each; store {database}; "
              f"workers {WHERE_WORKERS[args.workers]}"
              f"{f' ({args.worker_processes} a side)' if args.worker_processes > 1 else ''}, "
              f"dev server {temporal_cli()}", flush=True)
        if "bare" in work.slots:
            print(f"baseline (--bare {args.bare}): bare workflow, {DESCRIPTIONS[args.bare]}")
        if "api" in work.slots:
            print("through the API: `cases serve` in a process of its own; httpx, a pool of "
                  f"{max(args.concurrency)} connections; users for {len(work.councils)} "
                  "councils, an officer and an adviser")
        print(f"at the start: {load()}", flush=True)
        async with dev_server() as env:
            results = await run(env.client, store, store_url, args, work, tokens)
    print(f"at the end: {load()}")
    steps = journey_steps(datetime.now(UTC).date())
    for concurrency, figures in results:
        print(f"\n{concurrency} at a time:\n" + render(figures))
        if [f.name for f in figures] == ["bare", "engine"]:
            print(f"against the {args.bare} baseline:\n"
                  + verdict(engine=figures[1], bare=figures[0]))
        if [f.name for f in figures] == ["direct", "api"]:
            print("through the API against the direct client:\n"
                  + api_verdict(api=figures[1], direct=figures[0], steps=steps))
    if len(results) > 1 and all(len(figures) == 2 for _, figures in results):
        first, second = results[0][1][0].name, results[0][1][1].name
        print(f"\n{second} / {first}".ljust(17)
              + "  ".join(f"{c:>6} at a time" for c, _ in results))
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
    parser.add_argument("--only", choices=["engine", "bare", "api"], default=None,
                        help="run one side only (for profiling; with --through-api, engine "
                             "is the direct client)")
    parser.add_argument("--through-api", action="store_true",
                        help="compare the engine through the direct client with the engine "
                             "through the HTTP API (`cases serve` in its own process), "
                             "instead of engine and bare")
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
    if args.only == "api" and not args.through_api:
        parser.error("--only api needs --through-api")
    if args.only == "bare" and args.through_api:
        parser.error("--through-api compares the direct client and the API: no bare side")
    if args.no_logs and args.workers != "in-process":
        parser.error("--no-logs needs --workers in-process (cases-worker always logs)")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
