"""Deadline lapses under load (issue 6): many cases whose timers run out in the same minute.

Why: a case's deadlines are durable Temporal timers; when one lapses the workflow records
`DeadlineMissed` + `EscalationRaised` through a local activity. The issue asks that with
2,000 open cases lapsing together none is lost or recorded twice, and that the lapse reaches
the event store within 5 s (p99). This measures exactly that, against the real dev server and
a real `cases-worker` process, changing nothing in the engine.

How it works:

1. Starts the Temporal dev server (as tests/conftest.py does) and the worker in a
   subprocess (`worker.main`, what `cases-worker` runs; env TEMPORAL_ADDRESS,
   CASES_DATABASE_URL; its log goes to a file), serving the benchmark's deadline policies.
2. Puts the N made-up councils in the store's register (a case opens only for a council
   in it), opens N cases and drives each to `visit_scheduled` (start + scope, propose-team
   and its approval, confirm, schedule), `--concurrency` at a time.
3. Records the visits at a steady `--visit-rate` per second. `report_publication` counts
   from the recorded visit and the policy is fixed when a case starts, so each case gets its
   own named policy (`bench-i`, in the PolicyBook the worker is given: a case names its
   policy, the server holds the durations): case i's `report_publication` is
   lead + (N - i) / rate + i * W / N seconds (everything else stays months long). Visit i
   lands near start + i / rate, so the due times fall evenly across one `--window` of W
   seconds (default 60: the same minute), `--lead` seconds after the last visit; W = 0
   makes them all due at once. The realised window (from each stored `due_at`) is what is
   printed.
4. A reader thread tails the store (`read_after`, every `--poll` seconds) and notes when each
   `DeadlineMissed` first becomes visible. Lag = (start of the first read that returned the
   event) − the event's own `due_at`. The event was committed before that read began and
   after the previous read began, so the resolution is the gap between read starts (printed).
   Also printed, from the stored row alone: wake = occurred_at − due_at (the workflow clock
   when the timer's task ran, i.e. server + worker scheduling), and append = seen − occurred_at.
5. Samples the worker's VmRSS from /proc/<pid>/status throughout; reports idle, peak
   (also the kernel's VmHWM) and after the lapses.
6. Checks: exactly one DeadlineMissed and one EscalationRaised per case, and
   `verify_all(store).ok`.
7. With `--deliver` (issue 19), the lapses also reach people by email: a local SMTP server
   (`runtime.mail_sink.MailSink`, in this process, keeping each message as a file in the
   work dir) is started first and the worker is given CASES_SMTP_URL and CASES_MAIL_FROM,
   so its relay emails the outbox; contacts are imported before any case starts (each bench
   council's chief_executive and council_contact, and a principal_adviser and
   improvement_board at lga:England). A lapse makes 3 notices (DeadlineMissed to the
   council contact and the principal adviser, EscalationRaised level 1 to the chief
   executive); only those are measured (the earlier team_proposed notices are sent too, but
   not counted). Once every lapse is stored it waits (up to the same `--timeout`) until each
   lapse notice's delivery is finished, then matches each notice by its Message-ID
   (`notices.compose.message_id`, deterministic per notice) to what the sink received:
   lapse -> delivered = the sink's received_at - the stored DeadlineMissed's due_at; relay
   latency = received_at - the event's occurred_at. Lost: expected (3 a case) but not both
   finished in `deliveries` and received by the sink; duplicated: `sink.duplicates()` plus
   any Message-ID kept twice. Target: p99 under 10 s, none lost or duplicated; the baseline
   is the same run's lapse -> stored.

Driving steps that fail under load (an update refused because the case's workflow task
failed or timed out) are retried once the case shows they were not recorded; retries are
counted. If visits cannot keep to `--visit-rate`, the first deadlines lapse while visits are
still going in and the window stretches: a warning says so (lower the rate).

Run (from the project root; 6-9 minutes for 2,000 cases on 2 quiet cores, four of them
driving the cases to `visit_scheduled`):

    .venv/bin/python bench/lapses.py                       # 2,000 cases, SQLite in a temp dir
    .venv/bin/python bench/lapses.py --cases 100           # a quick check
    .venv/bin/python bench/lapses.py --deliver             # and email the lapses (issue 19)
    .venv/bin/python bench/lapses.py --worker-option max_cached_workflows=2500
    .venv/bin/python bench/lapses.py --window 0            # all 2,000 due at the same instant
    .venv/bin/python bench/lapses.py --database-url postgresql://postgres@127.0.0.1:5432/test

With PostgreSQL the store goes in a fresh schema (dropped afterwards). `--worker-option
max_cached_workflows=4000` (repeatable) runs the same `worker.main` with those keyword
arguments added to its `temporalio.worker.Worker` (overriding what `build_worker` reads from
CASES_MAX_CACHED_WORKFLOWS / CASES_WORKFLOW_TASK_POLLERS); `--worker-option activity_threads=32`
replaces its activity thread pool. Without any, the worker is `cases-worker`'s `worker.main`
with its defaults, except that it opens cases by the benchmark's policies (`--cases`,
`--lead`, `--visit-rate` and `--window` are handed to it) instead of the environment's.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import journey
from domain.commands import AnyCommand
from domain.contacts import NATIONAL_SCOPE, Contact, ContactRole
from domain.councils import Council
from domain.deadlines import DeadlinePolicy, DeadlineRules
from domain.policies import PolicyBook
from domain.vocabulary import CaseKind, DeadlineName, Stage
from eventstore import EventStore, StoredEvent, open_store
from eventstore.config import normalise_url
from eventstore.contacts import import_contacts
from eventstore.councils import import_councils
from eventstore.deliveries import FINISHED, NoticeDelivery, deliveries_of
from eventstore.records import as_utc
from eventstore.schema import deliveries, events, outbox
from eventstore.verify import verify_all
from notices.compose import addressed, message_id
from runtime import logging as case_logging
from runtime.binaries import temporal_cli
from runtime.converter import signed_converter
from runtime.mail_sink import MailSink, ReceivedMail
from runtime.process import exit_now
from runtime.signing import command_key
from workflows.improvement_case import ImprovementCase
from workflows.messages import CaseView, workflow_id_for
from workflows.search_attributes import ALL as ALL_SEARCH_ATTRIBUTES

OFFICER = "officer:bench"
KIND = CaseKind.CORPORATE_PEER_CHALLENGE
TARGET_P99_SECONDS = 5.0
DELIVERY_TARGET_P99_SECONDS = 10.0
MAIL_FROM = "cases@lga.example.org"
LAPSE_EVENTS = ("DeadlineMissed", "EscalationRaised")
NOTICES_PER_LAPSE = 3
"""DeadlineMissed: council_contact and principal_adviser; EscalationRaised level 1:
chief_executive (domain/notifications.py)."""


# --- measuring ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lapse:
    case_id: str
    position: int
    due_at: float
    occurred_at: float
    seen_at: float


class Tail(threading.Thread):
    """Tails the store and notes when each DeadlineMissed first becomes visible."""

    def __init__(self, store: EventStore, poll: float) -> None:
        super().__init__(name="tail", daemon=True)
        self.store = store
        self.poll = poll
        self.stopping = threading.Event()
        self.lapses: dict[str, Lapse] = {}
        self.read_gaps: list[tuple[float, float]] = []
        """(read start, gap since the previous read start)."""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._tail()
        except BaseException as error:
            self.error = error

    def _tail(self) -> None:
        position = 0
        previous_start: float | None = None
        while not self.stopping.is_set():
            started = time.time()
            batch = self.store.read_after(position, 5000)
            if previous_start is not None:
                self.read_gaps.append((started, started - previous_start))
            previous_start = started
            for stored in batch:
                position = stored.position
                if stored.type == "DeadlineMissed" and stored.event_id not in self.lapses:
                    self.lapses[stored.event_id] = _lapse(stored, started)
            if len(batch) < 5000:
                time.sleep(self.poll)

    def count(self) -> int:
        return len(self.lapses)


def _lapse(stored: StoredEvent, seen_at: float) -> Lapse:
    due_at = datetime.fromisoformat(stored.payload["due_at"])
    return Lapse(case_id=stored.case_id, position=stored.position, due_at=due_at.timestamp(),
                 occurred_at=stored.occurred_at.timestamp(), seen_at=seen_at)


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM … of a process, in KiB; empty once it has gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            found[key] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Samples a process's resident memory every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(name="rss", daemon=True)
        self.pid = pid
        self.interval = interval
        self.stopping = threading.Event()
        self.samples: list[tuple[float, int]] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            rss = vm_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((time.time(), rss))
            time.sleep(self.interval)

    def peak(self, since: float = 0.0, until: float = math.inf) -> int:
        return max((rss for at, rss in self.samples if since <= at <= until), default=0)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def summary(values: Sequence[float]) -> str:
    return (f"p50 {percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} s, "
            f"max {max(values, default=math.nan):.2f} s")


# --- the store ------------------------------------------------------------------------------

@dataclass
class StoreSetup:
    store: EventStore
    worker_url: str
    describe: str
    cleanup: Callable[[], None]


def make_store(url: str | None, workdir: Path) -> StoreSetup:
    if url is None:
        path = workdir / "cases.db"
        store = open_store(f"sqlite:///{path}")
        store.migrate()
        return StoreSetup(store, f"sqlite:///{path}", f"SQLite {path}", store.dispose)
    url = normalise_url(url)
    if not url.startswith("postgresql"):
        raise SystemExit("--database-url: only postgresql URLs (the default is SQLite)")
    schema = f"bench_lapses_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    store = open_store(url, connect_args={"options": f"-csearch_path={schema}"})
    store.migrate()
    parsed = sa.make_url(url)
    worker_url = parsed.update_query_dict({"options": f"-csearch_path={schema}"})

    def cleanup() -> None:
        store.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()

    return StoreSetup(store, worker_url.render_as_string(hide_password=False),
                      f"PostgreSQL {parsed.render_as_string()} schema {schema}", cleanup)


def stored_lapse_counts(store: EventStore) -> tuple[Counter[tuple[str, str]], int]:
    """(DeadlineMissed per (case, deadline), EscalationRaised count) from a full scan."""
    missed: Counter[tuple[str, str]] = Counter()
    raised = 0
    query = (sa.select(events.c.case_id, events.c.type, events.c.payload)
             .where(events.c.type.in_(["DeadlineMissed", "EscalationRaised"])))
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            if row.type == "DeadlineMissed":
                missed[(row.case_id, row.payload["deadline"])] += 1
            else:
                raised += 1
    return missed, raised


# --- the worker -----------------------------------------------------------------------------

def parse_worker_options(options: Sequence[str]) -> dict[str, int]:
    parsed: dict[str, int] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not value.isdigit():
            raise SystemExit(f"--worker-option {option!r}: expected NAME=INTEGER")
        parsed[key] = int(value)
    return parsed


def serve_worker(options: dict[str, int], policies: PolicyBook) -> None:
    """`cases-worker`, opening cases by `policies`, with extra keyword arguments for its
    Worker (benchmark tuning only)."""
    import temporalio.worker

    import worker as worker_module

    threads = options.pop("activity_threads", None)
    worker_module.__dict__["policies_from_environment"] = lambda environ=None: policies

    def tuned_worker(*args: Any, **kwargs: Any) -> temporalio.worker.Worker:
        if threads is not None:
            kwargs["activity_executor"] = concurrent.futures.ThreadPoolExecutor(threads)
        return temporalio.worker.Worker(*args, **{**kwargs, **options})

    worker_module.__dict__["Worker"] = tuned_worker
    worker_module.main(["--log-format", "json"])


def start_worker(address: str, database_url: str, args: argparse.Namespace,
                 log_path: Path, mail_url: str | None = None) -> subprocess.Popen[bytes]:
    """The worker, in a process of its own, with the options and policies of `args`; its
    relay mails `mail_url`'s server, or (None) runs not at all, whatever the environment
    says."""
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "CASES_DATABASE_URL": database_url}
    env.pop("CASES_SMTP_URL", None)
    if mail_url is not None:
        env.update({"CASES_SMTP_URL": mail_url, "CASES_MAIL_FROM": MAIL_FROM})
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-worker",
            "--cases", str(args.cases), "--lead", repr(args.lead),
            "--visit-rate", repr(args.visit_rate), "--window", repr(args.window)]
    for option in args.worker_option:
        argv += ["--worker-option", option]
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


# --- driving --------------------------------------------------------------------------------

@dataclass
class Phase:
    started: float = 0.0
    ended: float = 0.0
    done: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def run_all(jobs: Sequence[Callable[[], Any]], concurrency: int, phase: Phase,
                  label: str, keep_start: bool = False) -> None:
    gate = asyncio.Semaphore(concurrency)
    total = len(jobs)

    async def one(job: Callable[[], Any]) -> None:
        async with gate:
            try:
                await job()
            except Exception as error:
                phase.errors.append(f"{type(error).__name__}: {error}")
            phase.done += 1
            if phase.done % max(1, total // 10) == 0:
                print(f"  {label}: {phase.done}/{total} "
                      f"({time.time() - phase.started:.0f} s)", flush=True)

    if not keep_start:
        phase.started = time.time()
    await asyncio.gather(*(one(job) for job in jobs))
    phase.ended = time.time()
    if phase.errors:
        raise SystemExit(f"{label}: {len(phase.errors)} failed, first: {phase.errors[0]}")


def council(i: int) -> str:
    return f"E7{i:07d}"


def policy_for(i: int, args: argparse.Namespace) -> DeadlinePolicy:
    """Case i's visit lands about i / rate after the first; this puts its due time i * W / N
    into the window, which opens `lead` seconds after the last visit."""
    seconds = (args.lead + (args.cases - i) / args.visit_rate
               + i * args.window / args.cases)
    return DeadlinePolicy(default=DeadlineRules(report_publication=timedelta(seconds=seconds)))


def policy_name(i: int) -> str:
    return f"bench-{i}"


def bench_policies(args: argparse.Namespace) -> PolicyBook:
    """The worker's named policies: case i opens on `bench-i` (see `policy_for`)."""
    return PolicyBook(named={policy_name(i): policy_for(i, args) for i in range(args.cases)})


def register_councils(store: EventStore, n: int) -> None:
    """The benchmark's made-up councils, in the store's register (cases open only for those)."""
    import_councils(store, [Council(gss_code=council(i), code="BENCH", name=f"Bench {i}",
                                    short_name=f"Bench {i}", type="UA", nation="England")
                            for i in range(n)])


def council_addresses(gss: str) -> dict[ContactRole, str]:
    domain = f"{gss.lower()}.bench.example.org"
    return {ContactRole.CHIEF_EXECUTIVE: f"ceo@{domain}",
            ContactRole.COUNCIL_CONTACT: f"contact@{domain}"}


LGA_ADDRESSES = {ContactRole.PRINCIPAL_ADVISER: "adviser@lga.bench.example.org",
                 ContactRole.IMPROVEMENT_BOARD: "board@lga.bench.example.org"}


def import_bench_contacts(store: EventStore, n: int) -> int:
    """Each bench council's chief executive and council contact, and the LGA's principal
    adviser and improvement board for all England (the bench councils have no region), as
    one contacts version; returns it."""
    people = [Contact(scope=council(i), role=role, name=f"{role.label.capitalize()}, Bench {i}",
                      email=address)
              for i in range(n) for role, address in council_addresses(council(i)).items()]
    people += [Contact(scope=NATIONAL_SCOPE, role=role, name=f"Bench {role.label}",
                       email=address) for role, address in LGA_ADDRESSES.items()]
    digest = hashlib.sha256("\n".join(f"{c.scope},{c.role.value},{c.name},{c.email}"
                                      for c in people).encode()).hexdigest()
    return import_contacts(store, people, file_sha256=digest, source="bench/lapses.py",
                           imported_by=OFFICER)


# --- the benchmark --------------------------------------------------------------------------

def system_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


async def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-lapses-"))
    setup = make_store(args.database_url, workdir)
    print(f"lapses: {args.cases} cases, concurrency {args.concurrency}, visits at "
          f"{args.visit_rate:g}/s, due across {args.window:g} s starting {args.lead:g} s after "
          f"the last visit; store {setup.describe}; worker options "
          f"{' '.join(args.worker_option) or 'none (cases-worker as is)'}", flush=True)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}", flush=True)

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), search_attributes=ALL_SEARCH_ATTRIBUTES,
        data_converter=signed_converter(command_key()), ui=False, dev_server_log_level="error")
    address = env.client.service_client.config.target_host
    log_path = workdir / "worker.log"
    register_councils(setup.store, args.cases)
    sink: MailSink | None = None
    if args.deliver:
        # the sink logs each message it keeps at INFO: thousands of lines, so warnings only
        case_logging.configure("console", logging.WARNING)
        sink = MailSink(workdir / "mail")
        sink.start()
        version = import_bench_contacts(setup.store, args.cases)
        print(f"mail: sink {sink.url} keeping mail in {sink.folder}; contacts version {version} "
              f"({2 * args.cases + len(LGA_ADDRESSES)} contacts); the worker's relay sends as "
              f"{MAIL_FROM}", flush=True)
    worker = start_worker(address, setup.worker_url, args, log_path,
                          None if sink is None else sink.url)
    sampler = Sampler(worker.pid)
    sampler.start()
    tail = Tail(setup.store, args.poll)
    tail.start()
    failed = True
    try:
        failed = await measure(args, env, setup.store, worker, log_path, sampler, tail, sink)
    finally:
        tail.stopping.set()
        sampler.stopping.set()
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if sink is not None:
            sink.stop()
        await env.shutdown()
        setup.cleanup()
        if args.keep or failed:
            print(f"kept {workdir} (worker log: {log_path})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


async def measure(args: argparse.Namespace, env: WorkflowEnvironment, store: EventStore,
                  worker: subprocess.Popen[bytes], log_path: Path, sampler: Sampler,
                  tail: Tail, sink: MailSink | None = None) -> bool:
    cases = CaseClient(env.client, store=store)

    def handle(i: int) -> WorkflowHandle[Any, CaseView]:
        return env.client.get_workflow_handle(workflow_id_for(KIND, council(i)),
                                              result_type=CaseView)

    async def act(i: int, command: AnyCommand) -> CaseView:
        """What CaseClient.act does, less its look first (a query: one more workflow task)."""
        return await handle(i).execute_update(ImprovementCase.act, command)
    today = date.today()
    n = args.cases
    case_ids = [""] * n
    scripts = [list(journey(council(i), today, OFFICER))[:6] for i in range(n)]
    # To `visit_scheduled` (scope, propose-team, its approval, confirm, schedule), then the
    # visit; the case's version after each (the approval records the team with it).
    versions = [2, 3, 5, 6, 7, 8]
    for _ in range(300):  # the worker imports, migrates and connects
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        if b"worker starting" in log_path.read_bytes():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    idle_rss = vm_status(worker.pid).get("VmRSS", 0)

    retried: list[str] = []

    async def retrying(i: int, version: int,
                       action: Callable[[], Awaitable[CaseView]]) -> CaseView:
        """Run a driving step; on a transient failure (a workflow task failed under load, the
        update rejected), look whether it was recorded (the case at `version`) and retry if
        not."""
        for attempt in range(1, 11):
            try:
                return await action()
            except Exception as error:
                if attempt == 10:
                    raise
                retried.append(f"{type(error).__name__}: {str(error)[:120]}")
                await asyncio.sleep(min(2 * attempt, 10))
                try:
                    view = await handle(i).query(ImprovementCase.view)
                except RPCError:
                    continue
                if view.state.version >= version:
                    return view
        raise AssertionError("unreachable")

    def open_and_schedule(i: int) -> Callable[[], Any]:
        async def job() -> None:
            view = await retrying(i, 1, partial(
                cases.start, council=council(i), kind=KIND, reason="Benchmark case.",
                actor=OFFICER, deadline_policy=policy_name(i)))
            for version, command in zip(versions[:5], scripts[i][:5], strict=True):
                view = await retrying(i, version, partial(act, i, command))
            assert view.state.stage == Stage.VISIT_SCHEDULED, view.state.stage
            case_ids[i] = view.state.case_id
        return job

    driving = Phase()
    await run_all([open_and_schedule(i) for i in range(n)], args.concurrency, driving,
                  "open to visit_scheduled")
    if retried:
        print(f"  {len(retried)} steps retried; first: {retried[0]}", flush=True)
    print(f"opened and scheduled in {driving.seconds:.1f} s "
          f"({n * 6 / driving.seconds:.0f} actions/s); load {os.getloadavg()[0]:.2f}",
          flush=True)

    visiting = Phase()
    visiting.started = time.time() + 1
    late: list[float] = [math.nan] * n

    def record_visit(i: int) -> Callable[[], Any]:
        async def job() -> None:
            slot = visiting.started + i / args.visit_rate
            await asyncio.sleep(max(0.0, slot - time.time()))
            view = await retrying(i, versions[5], partial(act, i, scripts[i][5]))
            assert view.state.stage == Stage.VISITED
            assert view.next_deadline is not None
            assert view.next_deadline.deadline == DeadlineName.REPORT_PUBLICATION
            assert view.state.visit_recorded_at is not None
            late[i] = view.state.visit_recorded_at.timestamp() - slot
        return job

    await run_all([record_visit(i) for i in range(n)], max(200, args.concurrency), visiting,
                  "record visit", keep_start=True)
    driven_rss = vm_status(worker.pid).get("VmRSS", 0)
    print(f"visits recorded in {visiting.seconds:.1f} s ({len(retried)} steps retried in all); "
          f"each this long after its slot: {summary(late)}; worker RSS {mib(driven_rss)}",
          flush=True)

    window_opens = visiting.started + n / args.visit_rate + args.lead
    if visiting.ended > window_opens:
        print("WARNING: deadlines lapsed while visits were still being recorded; lower "
              "--visit-rate or raise --lead", flush=True)
    print(f"waiting for {n} lapses due from about "
          f"{datetime.fromtimestamp(window_opens, UTC):%H:%M:%S} UTC "
          f"({window_opens - time.time():.0f} s from now)", flush=True)
    await asyncio.sleep(max(0.0, window_opens - 2 - time.time()))
    cpu_before, system_before = cpu_seconds(worker.pid), system_cpu()
    give_up = window_opens + args.window + args.timeout
    while tail.count() < n and time.time() < give_up:
        if tail.error is not None:
            raise tail.error
        if worker.poll() is not None:
            print(f"the worker exited with {worker.returncode}", flush=True)
            break
        await asyncio.sleep(0.2)
    all_seen = time.time()
    cpu_lapses = cpu_seconds(worker.pid) - cpu_before
    system_after = system_cpu()
    busy = (system_after[0] - system_before[0]) / max(system_after[1] - system_before[1], 1)
    delivery: DeliveryWait | None = None
    if sink is not None:
        delivery = await wait_for_delivery(store, worker, n, max(give_up, all_seen + 1))
        delivery.cpu = cpu_seconds(worker.pid) - cpu_before
        system_after = system_cpu()
        delivery.busy = ((system_after[0] - system_before[0])
                         / max(system_after[1] - system_before[1], 1))
    await asyncio.sleep(args.settle)  # time for a duplicate to show itself
    after_status = vm_status(worker.pid)
    failed = report(args, store, tail, sampler, driving, visiting, idle_rss, driven_rss,
                    after_status, cpu_lapses, busy, all_seen, case_ids, len(retried))
    if sink is not None and delivery is not None:
        failed = report_delivery(args, store, tail, sink, delivery, log_path) or failed
    return failed


def report(args: argparse.Namespace, store: EventStore, tail: Tail, sampler: Sampler,
           driving: Phase, visiting: Phase, idle_rss: int, driven_rss: int,
           after_status: dict[str, int], cpu_lapses: float, busy: float, all_seen: float,
           case_ids: Sequence[str], retries: int) -> bool:
    """Print the figures; True if anything was lost or duplicated."""
    n = args.cases
    lapses = list(tail.lapses.values())
    missed, raised = stored_lapse_counts(store)
    duplicates = sum(count - 1 for count in missed.values() if count > 1)
    cases_missed = {case for case, _ in missed}
    lost = [c for c in case_ids if c not in cases_missed]
    verdict = verify_all(store)
    due = [x.due_at for x in lapses]
    lag = [x.seen_at - x.due_at for x in lapses]
    wake = [x.occurred_at - x.due_at for x in lapses]
    append = [x.seen_at - x.occurred_at for x in lapses]
    first, last = min(due, default=math.nan), max(due, default=math.nan)
    gaps = [gap for at, gap in tail.read_gaps if first - 1 <= at <= all_seen]
    last_seen = max((x.seen_at for x in lapses), default=math.nan)
    stored_per_5s = Counter(int((x.seen_at - first) // 5) for x in lapses)
    due_per_5s = Counter(int((x.due_at - first) // 5) for x in lapses)
    buckets = range(max(stored_per_5s, default=-1) + 1)

    def clock(at: float) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]

    print()
    print(f"cases                 {n}")
    print(f"driving               {driving.seconds + visiting.seconds:.1f} s "
          f"(open to visit_scheduled {driving.seconds:.1f} s at concurrency "
          f"{args.concurrency}, visits {visiting.seconds:.1f} s at {args.visit_rate:g}/s; "
          f"{retries} steps retried)")
    print(f"due window            {clock(first)} .. {clock(last)} UTC ({last - first:.1f} s, "
          f"{len(due) / max(last - first, 1):.0f} lapses/s)")
    print(f"lapse -> stored       {summary(lag)}  (first seen by the tail - due_at)")
    print(f"  wake                {summary(wake)}  (stored occurred_at - due_at)")
    print(f"  append, visible     {summary(append)}  (first seen - occurred_at)")
    print(f"  resolution          tail reads every {args.poll:g} s: gap between read starts "
          f"p50 {percentile(gaps, 50) * 1000:.0f} ms, max {max(gaps, default=math.nan) * 1000:.0f}"
          f" ms")
    print(f"  per 5 s, due        {' '.join(str(due_per_5s[b]) for b in buckets)}")
    print(f"  per 5 s, stored     {' '.join(str(stored_per_5s[b]) for b in buckets)}")
    print(f"last stored           {last_seen - last:.2f} s after the last due time")
    print(f"DeadlineMissed        {sum(missed.values())} stored for {len(cases_missed)} cases "
          f"(seen by the tail {len(lapses)}); duplicates {duplicates}; lost {len(lost)}")
    print(f"EscalationRaised      {raised}")
    problem = "" if verdict.ok else f"; first problem: {verdict.first_problem}"
    print(f"verify_all            ok={verdict.ok} ({verdict.cases} cases, "
          f"{verdict.events} events){problem}")
    print(f"worker RSS            idle {mib(idle_rss)}, after driving {mib(driven_rss)}, "
          f"peak {mib(sampler.peak())} (VmHWM {mib(after_status.get('VmHWM', 0))}), "
          f"peak while lapsing {mib(sampler.peak(since=first - 1))}, "
          f"after {mib(after_status.get('VmRSS', 0))}")
    print(f"while lapsing         worker CPU {cpu_lapses:.1f} s over "
          f"{all_seen - first + 2:.0f} s; machine {busy:.0%} busy")
    print(f"load average          {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = (sum(missed.values()) == n and duplicates == 0 and not lost and raised == n
          and verdict.ok)
    p99 = percentile(lag, 99)
    print(f"verdict               {'none lost or duplicated' if ok else 'LOST OR DUPLICATED'};"
          f" lapse -> stored p99 {p99:.2f} s "
          f"{'meets' if p99 < TARGET_P99_SECONDS else 'MISSES'} the "
          f"{TARGET_P99_SECONDS:g} s target", flush=True)
    return not ok


# --- delivery (issue 19) --------------------------------------------------------------------

@dataclass
class DeliveryWait:
    """The wait for every lapse notice's delivery to finish."""

    started: float
    ended: float = math.nan
    notices: int = 0
    """Lapse notices in the outbox when the wait ended."""
    finished: int = 0
    """Of those, how many had a finished delivery (sent, undeliverable or failed)."""
    timed_out: bool = False
    cpu: float = math.nan
    """The worker's CPU seconds from just before the window opened to the wait's end."""
    busy: float = math.nan
    """The machine's busy share over the same time."""


def lapse_notice_progress(store: EventStore) -> tuple[int, int]:
    """(lapse notices in the outbox, how many of them have a finished delivery)."""
    o, d, e = outbox, deliveries, events
    query = (sa.select(sa.func.count(),
                       sa.func.coalesce(sa.func.sum(sa.case((d.c.status.in_(FINISHED), 1),
                                                            else_=0)), 0))
             .select_from(o.join(e, e.c.event_id == o.c.event_id)
                          .outerjoin(d, d.c.outbox_id == o.c.id))
             .where(e.c.type.in_(LAPSE_EVENTS)))
    with store.engine.connect() as conn:
        row = conn.execute(query).one()
    return int(row[0]), int(row[1])


async def wait_for_delivery(store: EventStore, worker: subprocess.Popen[bytes], n: int,
                            give_up: float) -> DeliveryWait:
    """Poll (every 0.5 s) until all `n` lapses' notices are in the outbox and each one's
    delivery is finished, or `give_up`."""
    wait = DeliveryWait(started=time.time())
    expected = NOTICES_PER_LAPSE * n
    said = wait.started
    while True:
        wait.notices, wait.finished = lapse_notice_progress(store)
        if wait.notices >= expected and wait.finished >= wait.notices:
            break
        if time.time() >= give_up:
            wait.timed_out = True
            break
        if worker.poll() is not None:
            print(f"the worker exited with {worker.returncode}", flush=True)
            break
        if time.time() - said >= 10:
            print(f"  delivery: {wait.finished}/{expected} lapse notices finished "
                  f"({wait.notices} in the outbox)", flush=True)
            said = time.time()
        await asyncio.sleep(0.5)
    wait.ended = time.time()
    return wait


@dataclass(frozen=True)
class LapseEvent:
    occurred_at: float
    due_at: float
    """The due_at of the case's stored DeadlineMissed for the deadline."""


def lapse_events(store: EventStore) -> dict[str, LapseEvent]:
    """Every stored DeadlineMissed and EscalationRaised, by event id."""
    query = (sa.select(events.c.event_id, events.c.case_id, events.c.type,
                       events.c.occurred_at, events.c.payload)
             .where(events.c.type.in_(LAPSE_EVENTS)))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    due = {(r.case_id, r.payload["deadline"]):
           as_utc(datetime.fromisoformat(r.payload["due_at"])).timestamp()
           for r in rows if r.type == "DeadlineMissed"}
    return {r.event_id: LapseEvent(occurred_at=as_utc(r.occurred_at).timestamp(),
                                   due_at=due.get((r.case_id, r.payload["deadline"]), math.nan))
            for r in rows}


def expected_address(delivery: NoticeDelivery) -> str | None:
    """The one address the bench's contacts hold for the notice's recipient."""
    who = addressed(delivery.notice)
    if who.role in LGA_ADDRESSES:
        return LGA_ADDRESSES[who.role]
    return council_addresses(who.council).get(who.role) if who.council else None


def count_in_log(log_path: Path, *phrases: str) -> list[int]:
    try:
        text = log_path.read_bytes()
    except OSError:
        return [0 for _ in phrases]
    return [text.count(phrase.encode()) for phrase in phrases]


def report_delivery(args: argparse.Namespace, store: EventStore, tail: Tail, sink: MailSink,
                    wait: DeliveryWait, log_path: Path) -> bool:
    """Print the delivery figures; True if a lapse notice was lost or duplicated."""
    n = args.cases
    expected = NOTICES_PER_LAPSE * n
    domain = MAIL_FROM.rsplit("@", 1)[1]
    lapsed = lapse_events(store)
    notices = [d for d in deliveries_of(store, now=datetime.now(UTC))
               if d.notice.event_id in lapsed]
    read_started = time.time()
    mails = sink.received()
    read_seconds = time.time() - read_started
    kept = Counter(m.message_id for m in mails if m.message_id is not None)
    first_kept: dict[str, ReceivedMail] = {}
    for kept_mail in mails:
        if kept_mail.message_id is not None:
            first_kept.setdefault(kept_mail.message_id, kept_mail)
    sink_duplicates = sink.duplicates()
    kept_twice = sum(count - 1 for count in kept.values() if count > 1)
    duplicated = sink_duplicates + kept_twice
    statuses = Counter(d.status for d in notices)

    to_delivered: list[float] = []
    relay_latency: list[float] = []
    by_role: dict[str, list[float]] = {}
    received_at: list[float] = []
    lost_examples: list[str] = []
    id_mismatch = wrong_recipients = retried = 0
    for delivery in notices:
        notice = delivery.notice
        wanted = message_id(notice, domain)
        if delivery.message_id is not None and delivery.message_id != wanted:
            id_mismatch += 1
        retried += delivery.attempts > 1
        mail = first_kept.get(wanted)
        if mail is None or delivery.status not in FINISHED:
            lost_examples.append(f"{notice.case_id}/{notice.recipient} ({delivery.status}, "
                                 f"{'received' if mail else 'not received'})")
            continue
        if set(mail.recipients) != {expected_address(delivery)}:
            wrong_recipients += 1
        event = lapsed[notice.event_id]
        at = mail.received_at.timestamp()
        received_at.append(at)
        to_delivered.append(at - event.due_at)
        relay_latency.append(at - event.occurred_at)
        by_role.setdefault(notice.recipient, []).append(at - event.due_at)
    lost = expected - len(to_delivered)
    other_mail = len(first_kept) - len(to_delivered)

    lapses = list(tail.lapses.values())
    due = [x.due_at for x in lapses]
    first, last = min(due, default=math.nan), max(due, default=math.nan)
    stored_p99 = percentile([x.seen_at - x.due_at for x in lapses], 99)
    delivered_per_5s = Counter(int((at - first) // 5) for at in received_at)
    buckets = range(max(delivered_per_5s, default=-1) + 1)
    span = max(received_at, default=math.nan) - min(received_at, default=math.nan)
    unavailable, unreachable, undeliverable = count_in_log(
        log_path, "mail server unavailable", "relay cannot reach the store",
        "notice undeliverable")

    def full(values: Sequence[float]) -> str:
        return (f"p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, "
                f"p99 {percentile(values, 99):.2f} s, max {max(values, default=math.nan):.2f} s")

    print()
    print(f"delivery              the worker's relay -> {sink.url} (MailSink, a file per "
          f"message); {NOTICES_PER_LAPSE} notices a lapse")
    print(f"lapse notices         expected {expected}, in the outbox {len(notices)}; finished "
          f"{sum(statuses[s] for s in FINISHED)} (sent {statuses['sent']}, undeliverable "
          f"{statuses['undeliverable']}, failed {statuses['failed']}), pending "
          f"{statuses['pending']}{' when the wait timed out' if wait.timed_out else ''}")
    print(f"  delivered           {len(to_delivered)} received by the sink under their own "
          f"Message-ID and finished; lost {lost}; duplicated {duplicated} (sink duplicates "
          f"{sink_duplicates}, Message-IDs kept twice {kept_twice})")
    print(f"  checks              wrong recipients {wrong_recipients}; deliveries.message_id "
          f"differing from compose.message_id {id_mismatch}; sent more than once "
          f"{retried}; other mail kept {other_mail} (team_proposed)")
    if lost_examples:
        print(f"  lost, first         {'; '.join(lost_examples[:5])}")
    print(f"lapse -> delivered    {full(to_delivered)}  (sink received_at - due_at)")
    print("  by recipient        " + ", ".join(
        f"{role} p50 {percentile(v, 50):.2f} s p99 {percentile(v, 99):.2f} s"
        for role, v in sorted(by_role.items())))
    print(f"  relay latency       {summary(relay_latency)}  (received_at - event occurred_at)")
    print(f"  per 5 s, delivered  {' '.join(str(delivered_per_5s[b]) for b in buckets)}")
    print(f"  throughput          {len(received_at)} lapse notices over {span:.1f} s "
          f"({len(received_at) / max(span, 1e-9):.0f}/s)")
    print(f"last delivered        {max(received_at, default=math.nan) - last:.2f} s after the "
          f"last due time; wait for deliveries to finish ended "
          f"{wait.ended - wait.started:.1f} s after the last lapse was stored")
    print(f"while lapsing+mailing worker CPU {wait.cpu:.1f} s over "
          f"{wait.ended - first + 2:.0f} s; machine {wait.busy:.0%} busy")
    print(f"worker log            'mail server unavailable' {unavailable}, 'relay cannot reach "
          f"the store' {unreachable}, 'notice undeliverable' {undeliverable}")
    print(f"sink read             received() {read_seconds:.1f} s for {len(mails)} messages")
    p99 = percentile(to_delivered, 99)
    print(f"baseline              lapse -> stored p99 {stored_p99:.2f} s (this run); "
          f"delivered/stored p99 {p99 / stored_p99:.2f}x")
    print(f"load average          {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    fast = p99 < DELIVERY_TARGET_P99_SECONDS
    met = fast and lost == 0 and duplicated == 0
    print(f"delivery verdict      {'MEETS' if met else 'MISSES'} the target: lapse -> delivered "
          f"p99 {p99:.2f} s ({'<' if fast else 'NOT <'} {DELIVERY_TARGET_P99_SECONDS:g} s), "
          f"{duplicated} duplicated, {lost} lost", flush=True)
    return lost > 0 or duplicated > 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50,
                        help="cases driven at once to visit_scheduled (default 50)")
    parser.add_argument("--visit-rate", type=float, default=20,
                        help="visits recorded per second (default 20)")
    parser.add_argument("--window", type=float, default=60,
                        help="seconds the due times spread over (default 60; 0: all at once)")
    parser.add_argument("--lead", type=float, default=30,
                        help="seconds from the last visit to the window (default 30)")
    parser.add_argument("--database-url", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="seconds between the tail's reads (default 0.05)")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds after the window to give up waiting for the lapses "
                             "(and, with --deliver, their notices' delivery) (default 120)")
    parser.add_argument("--settle", type=float, default=5,
                        help="seconds to wait after the last lapse for duplicates (default 5)")
    parser.add_argument("--worker-option", action="append", default=[], metavar="NAME=N",
                        help="extra Worker keyword argument (or activity_threads=N)")
    parser.add_argument("--deliver", action="store_true",
                        help="also email the lapses through the worker's relay to a local SMTP "
                             "server and measure lapse -> delivered (issue 19)")
    parser.add_argument("--keep", action="store_true", help="keep the store and worker log")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_worker:
        serve_worker(parse_worker_options(args.worker_option), bench_policies(args))
        return
    parse_worker_options(args.worker_option)
    exit_now(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
