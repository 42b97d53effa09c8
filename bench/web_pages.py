"""The web pages under load (issue 18): the officers' case list, a case's page and the public
register, each beside a static file served by the same server in the same run.

A store of N cases (default 10,000; about 15 events a case, so 150,000 events) is built through
the store's own API (`EventStore.append_cases`: the store makes every hash and link, and
`verify_all` checks them after), with case histories generated as bench/figures.py generates
them (tests/test_domain_figures.py's generator: requests, teams, visits, reports, the deadline
engine's lapses and escalations), over England's current councils from the register file
(`--councils-csv`, imported as `cases councils import` does; made-up councils if it is absent).
Each case gets a real case id (`cpc-E09000008-2025`, `-2` for a second of the kind that year)
and one of 20 officers as the officer who asked for it and acted on it; cases whose visit was
before April 2025 and whose action plan is out go on to a progress review and are closed. The
read models are caught up (`Projector(store).catch_up()`) before the server starts.

The server is the API as deployed: `cases serve --processes N` (`--processes`, default 2,
this machine's cores: N uvicorn processes sharing the port), with the web pages mounted on
it, on a Temporal dev server. A case page folds the store's events (the page no longer asks
Temporal; the stored cases have no workflows anyway). Each client signs in through the
sign-in form as one of the officers (its own session cookie), then sends, one after another
and in turn:

- GET /dashboard: the officers' case list (every open case, the officer's own, what is due);
- GET /cases/{id}: a case chosen at random from all N;
- GET /register: the public register (as a signed-in officer: one user look-up more than
  the public's);
- GET the static file (`--static`, default /static/app.mjs): the baseline, the cheapest
  answer the same server gives, under the same load.

Two phases: alone (one client; each page in blocks of five, the blocks taking turns, with the
server process's CPU time per request read from /proc), then loaded (`--clients`, default 20,
each with its own keep-alive connection, for `--seconds` after a warm-up). "Server time" is
measured at the client over loopback: from sending the request to the last byte of the answer
(the time to the answer's headers is shown too). The server has no Server-Timing header, and
none is added: on loopback the client's time is the server's plus a fraction of a millisecond,
and under load it includes the time a request waits for the server, which is what a user waits.
The clients (`Client`: one keep-alive connection each, a few lines of HTTP/1.1, not httpx, so
that measuring takes little of the cores) run in this process, beside the server and the
database on the same machine. Printed for each page: requests, p50, p95, p99 and max in ms, and
the ratio of its p50 and p95 to the static file's. Every answer must be 200 (a redirect to
sign-in is a failure): otherwise the run exits 1. Target (issue 18): p95 at most 100 ms for
each page.

PostgreSQL by default, in a fresh schema dropped at the end; `--database-url` names another
PostgreSQL database (a fresh schema in it too) or a new SQLite file (removed at the end).
`--pages` leaves pages out (the static file always stays): one page alone, to profile it with
`--py-spy OUT` (py-spy on PATH; collapsed stacks of the server during the loaded phase).

Named `web_pages.py`, not `web.py`: as a top-level module `web` it would clash with the package
web/ for mypy (`mypy .`: "Duplicate module named 'web'") and hide it in this process.

    .venv/bin/python bench/web_pages.py                       # 10,000 cases, 20 clients
    .venv/bin/python bench/web_pages.py --cases 2000 --seconds 20
    .venv/bin/python bench/web_pages.py --database-url sqlite:////tmp/web.db
    .venv/bin/python bench/web_pages.py --pages case --py-spy /tmp/case.txt   # where it goes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import logging
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
from figures import (
    OFFICER,
    Driver,
    at,
    fresh_store,
    history_of,
    percentile,
    plan_year,
)
from journey_api import ApiProcess, api_process
from temporalio.testing import WorkflowEnvironment

from application.users import add_user
from domain import commands as cmd
from domain.actors import Role, principal_for
from domain.councils import BUILT_IN_COUNCILS, Council, english_councils, parse_register
from domain.recorded import Recorded
from domain.rules import CommandRefused
from domain.state import apply
from domain.vocabulary import Stage
from eventstore import EventStore, NewEvent
from eventstore.councils import import_councils
from eventstore.projections import Projector
from eventstore.verify import verify_all
from runtime.binaries import temporal_cli
from runtime.signing import KEY_FILE_VARIABLE, write_key
from workflows.messages import case_id_for

POSTGRES_URL = os.environ.get(
    "CASES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COUNCILS_CSV = Path("/work/shared/data/uk_local_authorities_current.csv")
TARGET_P95_MS = 100.0
OFFICERS = 20
"""The officers the cases are spread over, and the clients sign in as."""
PASSWORD = "bench-web-password"
CASES_A_TRANSACTION = 300
REVIEWED_BEFORE = date(2025, 4, 1)
"""Cases visited before this, with their action plan out, have had their progress review and
are closed: about 15 events a case over the generator's mix."""
PAGES = ("dashboard", "case", "register", "static")
NAMES = {"dashboard": "GET /dashboard (case list)", "case": "GET /cases/{id} (case page)",
         "register": "GET /register (public register)", "static": "GET {static} (static file)"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- the store -------------------------------------------------------------------------------

def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def councils(path: Path) -> list[Council]:
    """The register to import: every council in the file (as `cases councils import`); made-up
    English councils beside the built-in ones if the file is absent."""
    if path.exists():
        with path.open(newline="", encoding="utf-8") as file:
            return parse_register(csv.DictReader(file))
    print(f"note: {path} not found; made-up councils E99000001… beside the built-in ones",
          file=sys.stderr)
    return [*BUILT_IN_COUNCILS.values(),
            *(Council(gss_code=f"E99{n:06d}", code=f"B{n:03d}", name=f"Bench Council {n}",
                      short_name=f"Bench {n}", type="NMD", nation="England",
                      region="South East") for n in range(1, 304))]


def officer(n: int) -> str:
    return f"bench-officer-{n:02d}"


def completed(plan_history: list[Recorded], case_id: str, council: str,
              visit_end: date | None) -> list[Recorded]:
    """The history, gone on to its progress review and closure if the visit was long enough
    ago and the action plan is out (lapses recorded by the deadline engine as they fall)."""
    driver = Driver(case_id)
    for recorded in plan_history:
        driver.state = apply(driver.state, recorded)
    driver.history = list(plan_history)
    if (visit_end is None or visit_end >= REVIEWED_BEFORE
            or driver.state.stage != Stage.ACTION_PLAN_PUBLISHED):
        return driver.history
    review = visit_end + timedelta(days=330)
    published = review + timedelta(days=20)
    with contextlib.suppress(CommandRefused):
        driver.act(cmd.HoldProgressReview(actor=OFFICER, started_on=review,
                                          ended_on=review + timedelta(days=1)),
                   at(review + timedelta(days=2)))
        driver.act(cmd.PublishProgressReview(actor=f"council:{council}", published_on=published,
                                             url="https://example.org/progress-review"),
                   at(published))
        driver.act(cmd.CloseCase(actor=OFFICER, summary="Progress review published."),
                   at(published + timedelta(days=7)))
    return driver.history


def generated(count: int, codes: Sequence[str]) -> Iterator[tuple[str, list[NewEvent]]]:
    """`count` cases as bench/figures.py generates them, each with a real case id and one of
    the officers (in turn) in place of the generator's one."""
    attempts: Counter[tuple[str, str, int]] = Counter()
    made = seed = 0
    while True:
        for plan in plan_year(seed, codes):
            requested = (plan.visit_end or date(2025, 6, 1)) - timedelta(days=42)
            slot = (plan.kind.value, plan.council, requested.year)
            attempts[slot] += 1
            case_id = case_id_for(plan.kind, plan.council, requested.year, attempts[slot])
            plan = dataclasses.replace(plan, case_id=case_id)
            history = completed(history_of(plan), case_id, plan.council, plan.visit_end)
            actor = principal_for(Role.CASE_OFFICER, officer(made % OFFICERS + 1)).actor
            yield case_id, [NewEvent.of(r.event, event_id=r.event_id, occurred_at=r.occurred_at,
                                        actor=actor if r.actor == OFFICER else r.actor)
                            for r in history]
            made += 1
            if made == count:
                return
        seed += 1


def fill(store: EventStore, count: int, codes: Sequence[str]
         ) -> tuple[list[str], int, Counter[str]]:
    """Append `count` generated cases, CASES_A_TRANSACTION to an `append_cases` call, each
    call checked; (the case ids, the events stored, the cases by stage)."""
    case_ids: list[str] = []
    stored = 0
    stages: Counter[str] = Counter()
    batch: list[tuple[str, int, list[NewEvent]]] = []

    def write() -> None:
        nonlocal stored
        answers = store.append_cases(batch)
        for (_, _, sent), got in zip(batch, answers, strict=True):
            assert len(got) == len(sent) and got[-1].version == len(sent)
        stored += sum(len(sent) for _, _, sent in batch)
        batch.clear()

    for case_id, new in generated(count, codes):
        case_ids.append(case_id)
        batch.append((case_id, 0, new))
        stages[_last_stage(new)] += 1
        if len(batch) >= CASES_A_TRANSACTION:
            write()
            if len(case_ids) % 3000 == 0:
                print(f"  {len(case_ids):,} cases, {stored:,} events; load {load()}", flush=True)
    if batch:
        write()
    return case_ids, stored, stages


_ENDING = {"CaseClosed": "closed", "CaseWithdrawn": "withdrawn"}


def _last_stage(new: Sequence[NewEvent]) -> str:
    return next((_ENDING[e.type] for e in reversed(new) if e.type in _ENDING), "open")


# --- the server --------------------------------------------------------------------------------

@contextlib.contextmanager
def command_key() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-web-key-") as directory:
        path = Path(directory) / "command.key"
        write_key(path)
        yield path


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    if found is None:
        raise SystemExit("the sign-in page has no form with a CSRF token")
    return found.group(1)


class Client:
    """One signed-in client on one keep-alive HTTP/1.1 connection, speaking only what these
    pages need (GET with the session's cookie; answers with Content-Length or chunked). Not
    httpx: on a 2-core machine the measuring side's CPU is taken from the server's, and
    httpx's pure-Python parsing of 20 clients' answers (the register is 383 KB) took a third
    of a core."""

    def __init__(self, url: str, cookie: str) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.cookie = cookie
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, float, bytes]:
        """(status, seconds to the answer's headers, the body)."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                            socket.TCP_NODELAY, 1)
        began = time.perf_counter()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                          f"Cookie: {self.cookie}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        headed = time.perf_counter() - began
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in fields:
            body = await self.reader.readexactly(int(fields["content-length"]))
        else:  # chunked
            parts = []
            while size := int((await self.reader.readline()).strip(), 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            body = b"".join(parts)
        if fields.get("connection", "").lower() == "close":
            await self.aclose()
        return status, headed, body

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def signed_in(url: str, name: str) -> Client:
    """A client with its own session, signed in as `name` through the sign-in form (its CSRF
    token, then the POST), as a browser does; its pages then asked for over one keep-alive
    connection of its own."""
    async with httpx.AsyncClient(base_url=url, follow_redirects=False, timeout=120) as http:
        form = await http.get("/sign-in")
        answer = await http.post("/sign-in", data={"csrf_token": csrf_of(form.text),
                                                   "name": name, "password": PASSWORD,
                                                   "next": ""})
        if answer.status_code != 303 or answer.headers.get("location") != "/dashboard":
            raise SystemExit(f"signing in as {name}: {answer.status_code} "
                             f"{answer.headers.get('location')} {answer.text[:300]}")
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    return Client(url, cookie)


# --- the measurements ------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    page: str
    status: int
    headers_s: float
    """From sending the request to its answer's headers."""
    total_s: float
    """From sending the request to the last byte of its answer."""
    size: int


@dataclass
class Pages:
    """What each request asks for."""

    static: str
    case_ids: Sequence[str]
    kinds: tuple[str, ...] = PAGES
    """The pages asked for, the static file last."""
    rng: random.Random = field(default_factory=lambda: random.Random(18))

    def name(self, page: str) -> str:
        return NAMES[page].replace("{static}", self.static)

    def url(self, page: str) -> str:
        if page == "case":
            return f"/cases/{self.rng.choice(self.case_ids)}"
        return {"dashboard": "/dashboard", "register": "/register", "static": self.static}[page]


async def fetch(http: Client, page: str, url: str) -> Sample:
    began = time.perf_counter()
    status, headers, body = await http.get(url)
    done = time.perf_counter()
    if status != 200:
        print(f"  {page} {url}: {status} {body[:200]!r}", file=sys.stderr)
    return Sample(page, status, headers, done - began, len(body))


async def alone(http: Client, pages: Pages, rounds: int, server: ApiProcess
                ) -> tuple[list[Sample], dict[str, float]]:
    """One client: each page in blocks of five, the blocks taking turns (the order turned
    each round); the server's CPU seconds a request of each page, from /proc."""
    samples: list[Sample] = []
    kinds = pages.kinds
    cpu: dict[str, float] = dict.fromkeys(kinds, 0.0)
    count: Counter[str] = Counter()
    for round_ in range(rounds):
        order = kinds[round_ % len(kinds):] + kinds[:round_ % len(kinds)]
        for page in order if round_ % 2 == 0 else tuple(reversed(order)):
            before = server.cpu()
            for _ in range(5):
                samples.append(await fetch(http, page, pages.url(page)))
            cpu[page] += server.cpu() - before
            count[page] += 5
    return samples, {page: cpu[page] / count[page] for page in kinds}


async def loaded(clients: Sequence[Client], pages: Pages, seconds: float
                 ) -> tuple[list[Sample], float]:
    """Every client sends the pages in turn (each starting at another), one request after
    another, until `seconds` have passed; (the samples, the seconds they took)."""
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds

    async def client(index: int, http: Client) -> None:
        turn = index
        while time.monotonic() < deadline:
            page = pages.kinds[turn % len(pages.kinds)]
            turn += 1
            samples.append(await fetch(http, page, pages.url(page)))

    began = time.perf_counter()
    await asyncio.gather(*(client(i, http) for i, http in enumerate(clients)))
    return samples, time.perf_counter() - began


def ms(values: Sequence[float], p: float) -> float:
    return percentile(values, p) * 1000


def table(samples: Sequence[Sample], pages: Pages, cpu: dict[str, float] | None = None
          ) -> list[str]:
    by_page = {page: [s for s in samples if s.page == page] for page in pages.kinds}
    base = [s.total_s for s in by_page["static"]]
    base50, base95 = ms(base, 50), ms(base, 95)
    lines = [f"  {'page':<34} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} "
             f"{'p50/st':>7} {'p95/st':>7} {'hdr p50':>8} {'hdr p95':>8} {'KB':>7}"
             + (f" {'CPU/req':>8}" if cpu else "")]
    for page in pages.kinds:
        got = by_page[page]
        total = [s.total_s for s in got]
        head = [s.headers_s for s in got]
        p50, p95 = ms(total, 50), ms(total, 95)
        lines.append(
            f"  {pages.name(page):<34} {len(got):>6} {p50:>8.1f} {p95:>8.1f} "
            f"{ms(total, 99):>8.1f} {max(total, default=0) * 1000:>8.1f} {p50 / base50:>7.1f} "
            f"{p95 / base95:>7.1f} {ms(head, 50):>8.1f} {ms(head, 95):>8.1f} "
            f"{sum(s.size for s in got) / max(1, len(got)) / 1000:>7.0f}"
            + (f" {cpu[page] * 1000:>6.1f}ms" if cpu else ""))
    return lines


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """`py-spy record` of the server for the loaded phase (collapsed stacks, one a line): of
    its first server process when it runs several (`--processes`)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("--py-spy: py-spy is not on PATH nor beside this interpreter")
    return subprocess.Popen([found, "record", "--pid", str(pid), "--duration",
                             str(max(1, round(seconds))), "--rate", "200", "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --- the run -------------------------------------------------------------------------------------

async def measure(args: argparse.Namespace, store_url: str, case_ids: Sequence[str],
                  logs: Path, key: Path) -> int:
    pages = Pages(static=args.static, case_ids=case_ids, kinds=(*args.pages, "static"))
    async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(), ui=False,
            dev_server_log_level="error") as temporal:
        environment = {**os.environ, "CASES_DATABASE_URL": store_url,
                       "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
                       "TEMPORAL_NAMESPACE": temporal.client.namespace,
                       KEY_FILE_VARIABLE: str(key), "CASES_INSECURE_COOKIES": "1",
                       "CASES_SIGN_IN_RATE": "10000/minute"}
        async with api_process(environment, logs,
                               ("--processes", str(args.processes))) as server:
            print(f"`cases serve` (pid {server.pid}) at {server.url}; Temporal dev server "
                  f"{temporal_cli()}; load {load()}", flush=True)
            clients = [await signed_in(server.url, officer(i % OFFICERS + 1))
                       for i in range(args.clients)]
            try:
                for page in pages.kinds:  # the first of each: templates compiled, caches filled
                    first = await fetch(clients[0], page, pages.url(page))
                    print(f"  first {page}: {first.total_s * 1000:.0f} ms, {first.status}, "
                          f"{first.size / 1000:.0f} KB", flush=True)
                quiet, cpu = await alone(clients[0], pages, args.rounds, server)
                print(f"\nalone (one client, {args.rounds} rounds of blocks of 5; CPU/req: "
                      f"the server processes' CPU time a request; load {load()}):", flush=True)
                print("\n".join(table(quiet, pages, cpu)), flush=True)
                print(f"\nwarm-up: {args.clients} clients for {args.warmup:g} s", flush=True)
                warm, _ = await loaded(clients, pages, args.warmup)
                profiler = (py_spy(server.pid, args.seconds, args.py_spy) if args.py_spy
                            else None)
                cpu_before, own_before = server.cpu(), time.process_time()
                busy, took = await loaded(clients, pages, args.seconds)
                server_cpu = server.cpu() - cpu_before
                own_cpu = time.process_time() - own_before
                if profiler is not None:
                    _, err = profiler.communicate(timeout=120)
                    print(f"py-spy: {args.py_spy} ({err.decode(errors='replace')[-300:]})")
            finally:
                for http in clients:
                    await http.aclose()
    print(f"\nloaded ({args.clients} clients, {args.seconds:g} s: {len(busy):,} requests, "
          f"{len(busy) / took:.1f}/s; the server processes' CPU {server_cpu / took:.2f} of a "
          f"core, {server_cpu / len(busy) * 1000:.1f} ms a request; the clients' process "
          f"{own_cpu / took:.2f} of a core; load {load()}):")
    lines = table(busy, pages)
    print("\n".join(lines))
    bad = [s for s in (*quiet, *warm, *busy) if s.status != 200]
    by_page = {page: [s.total_s for s in busy if s.page == page] for page in pages.kinds}
    base95 = ms(by_page["static"], 95)
    print(f"\n| page | p50 ms | p95 ms | static p50 / p95 ms | ratio p50 / p95 | alone p50 ms "
          f"| target p95 ≤ {TARGET_P95_MS:g} ms |\n|---|---|---|---|---|---|---|")
    for page in pages.kinds[:-1]:
        p50, p95 = ms(by_page[page], 50), ms(by_page[page], 95)
        quiet50 = ms([s.total_s for s in quiet if s.page == page], 50)
        print(f"| {pages.name(page)} | {p50:.1f} | **{p95:.1f}** | "
              f"{ms(by_page['static'], 50):.1f} / {base95:.1f} | "
              f"{p50 / ms(by_page['static'], 50):.1f} / {p95 / base95:.1f} | {quiet50:.1f} | "
              f"{'yes' if p95 <= TARGET_P95_MS else 'NO'} |")
    if bad:
        print(f"\n{len(bad)} answers were not 200: "
              + ", ".join(f"{page} {status}: {n}" for (page, status), n in
                          Counter((s.page, s.status) for s in bad).items()), file=sys.stderr)
        return 1
    print(f"\nevery answer 200 ({len(quiet) + len(warm) + len(busy):,} requests)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000,
                        help="cases in the store (default 10,000; about 15 events a case)")
    parser.add_argument("--clients", type=int, default=20,
                        help="concurrent clients in the loaded phase (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long the loaded phase runs (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of load before it, not counted (default 5)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds of the alone phase: five requests of each page a round "
                             "(default 10)")
    parser.add_argument("--processes", type=int, default=2,
                        help="server processes `cases serve --processes` runs on the port "
                             "(default 2: this machine's cores)")
    parser.add_argument("--static", default="/static/app.mjs",
                        help="the static file of the baseline (default /static/app.mjs; "
                             "/govuk/govuk-frontend.min.css is the 124 KB stylesheet)")
    parser.add_argument("--pages", type=lambda text: tuple(text.split(",")),
                        default=PAGES[:-1], metavar="PAGE,…",
                        help="the pages asked for, beside the static file: dashboard, case, "
                             "register (default all three; one alone, to profile it)")
    parser.add_argument("--database-url",
                        help=f"PostgreSQL (a fresh schema in it; default {POSTGRES_URL}) or "
                             "sqlite:///NEW-FILE")
    parser.add_argument("--councils-csv", type=Path, default=COUNCILS_CSV,
                        help=f"the register of councils to import (default {COUNCILS_CSV})")
    parser.add_argument("--py-spy", type=Path, metavar="OUT",
                        help="record the server with py-spy during the loaded phase, to OUT "
                             "(collapsed stacks)")
    args = parser.parse_args(argv)
    if args.cases < 10 or args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--cases 10 or more; --clients, --seconds and --rounds above 0")
    if not args.pages or set(args.pages) - set(PAGES[:-1]):
        parser.error("--pages: one or more of dashboard, case, register, with commas")

    from runtime.logging import configure
    configure(level=logging.WARNING)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}; "
          f"load {load()}", flush=True)
    register = councils(args.councils_csv)
    codes = sorted(c.gss_code for c in english_councils(register))
    with (fresh_store(args.database_url, "bench_web", pool_size=5) as (store, store_url),
          tempfile.TemporaryDirectory(prefix="bench-web-") as scratch, command_key() as key):
        import_councils(store, register)
        for n in range(1, OFFICERS + 1):
            add_user(store, officer(n), Role.CASE_OFFICER, password=PASSWORD)
        began = time.perf_counter()
        case_ids, stored, stages = fill(store, args.cases, codes)
        print(f"{store.engine.dialect.name}: {stored:,} events of {len(case_ids):,} cases "
              f"({stored / len(case_ids):.1f} a case; {stages['open']:,} open, "
              f"{stages['closed']:,} closed, {stages['withdrawn']:,} withdrawn) over "
              f"{len(codes)} English councils ({len(register)} in the register), in "
              f"{time.perf_counter() - began:.0f} s; load {load()}", flush=True)
        began = time.perf_counter()
        verified = verify_all(store)
        if not verified.ok or verified.events != stored:
            raise SystemExit(f"verify_all: {verified.problems[:3]} ({verified.events} events)")
        applied = Projector(store).catch_up()
        print(f"verify_all: every hash and link holds; read models caught up ({applied:,} "
              f"events) in {time.perf_counter() - began:.0f} s", flush=True)
        return asyncio.run(measure(args, store_url, case_ids, Path(scratch), key))


if __name__ == "__main__":
    sys.exit(main())
