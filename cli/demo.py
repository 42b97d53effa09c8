"""`cases demo` (what `make demo` runs): real councils' cases through every stage on the dev
server, with deadlines of seconds so that one lapse escalates and then resolves while you
watch; then the status table, a timeline and the verify verdict. Leaves its store behind.

First it imports a made-up history of past peer challenges (`demo_history.csv`, beside this
module), so the public register has councils that published on time, late and never, and
some whose next challenge is due or overdue. One challenge is still under way and has
lapsed, so the engine escalates it at once: Birmingham's finance challenge, so that its
escalation goes to the people the demo's own lapse reaches (and no corporate slot the demo
needs is taken).

Every action goes through the API, as the demo user it belongs to (an officer, an adviser
for the second pair of eyes, each council's contact), signed in with the demo password."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from api.app import Engine, create_app
from api.server import serving
from api.settings import ApiSettings
from application.journey import journey
from application.users import DEMO_PASSWORD, DEMO_USERS, ensure_demo_users
from cli import render
from cli.api_client import DEFAULT_API_URL
from cli.demo_contacts import ensure_demo_contacts
from cli.dev import mail_settings
from cli.dev_server import dev_server
from domain import commands as cmd
from domain.actors import Role, parse_actor
from domain.checkpoints import CHECKPOINT_STREAM
from domain.peers import demo_pool
from domain.policies import PolicyBook, demo_policy_name
from domain.vocabulary import CaseKind, DeadlineName, Stage
from eventstore import EventStore, open_store
from eventstore.deliveries import NoticeDelivery, deliveries_of
from eventstore.peers import import_pool
from eventstore.schema import events
from eventstore.verify import verify_all
from notices.relay import relaying
from notices.settings import MailSettings
from runtime.projecting import projecting
from worker import build_worker
from workflows.messages import CaseView

COUNCILS = {
    "E09000008": "Croydon",
    "E08000025": "Birmingham",
    "E06000001": "Hartlepool",
}
DEMO_HISTORY = Path(__file__).with_name("demo_history.csv")
"""Past peer challenges, made up, of the built-in councils (none but Birmingham's under way:
the demo's own corporate cases take Croydon's and Birmingham's corporate slots)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _say(text: str) -> None:
    print(f"  · {text}", flush=True)


class DemoApi:
    """The demo's door: the API, with a token per demo user; a command goes as the demo user
    its actor names (the API records that user, whatever the script says)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.tokens: dict[str, str] = {}

    async def sign_in(self) -> None:
        for name, _role, _council in DEMO_USERS:
            answer = await self.http.post("/api/tokens", json={
                "name": name, "password": DEMO_PASSWORD, "label": "cases demo"})
            if answer.status_code != 201:
                raise RuntimeError(f"demo: {name} could not sign in: {answer.text}")
            self.tokens[name] = answer.json()["token"]

    def _as(self, actor: str) -> dict[str, str]:
        who = parse_actor(actor)
        name = {Role.CASE_OFFICER: "demo-officer", Role.LGA_ADVISER: "demo-adviser",
                Role.COUNCIL: f"contact-{who.council}"}[who.role]
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def _answer(self, response: httpx.Response) -> CaseView:
        if response.status_code >= 400:
            raise RuntimeError(f"demo: the API refused: {response.json().get('detail')}")
        return CaseView.model_validate(response.json())

    async def start(self, *, council: str, kind: CaseKind, reason: str, actor: str,
                    deadline_policy: str, scope: list[str] | None = None,
                    budget_gap_pence: int | None = None) -> CaseView:
        return await self._answer(await self.http.post("/api/cases", headers=self._as(actor), json={
            "council": council, "kind": kind.value, "reason": reason, "scope": scope or [],
            "budget_gap_pence": budget_gap_pence, "deadline_policy": deadline_policy}))

    async def act(self, case_id: str, command: cmd.AnyCommand) -> CaseView:
        body = command.model_dump(mode="json", exclude={"actor", "case_id"})
        return await self._answer(await self.http.post(
            f"/api/cases/{case_id}/actions", headers=self._as(command.actor), json=body))

    async def import_history(self, data: bytes) -> dict[str, Any]:
        """Past peer challenges, as the demo officer: the API's import, whole or not at all
        (importing the same file again changes nothing)."""
        answer = await self.http.post("/api/imports/history", content=data, headers={
            **self._as("case_officer:demo-officer"), "Content-Type": "text/csv"})
        if answer.status_code != 201:
            raise RuntimeError(f"demo: the history import was refused: {answer.text}")
        result: dict[str, Any] = answer.json()
        return result

    async def view(self, case_id: str) -> CaseView:
        return await self._answer(await self.http.get(
            f"/api/cases/{case_id}", headers=self._as("case_officer:demo-officer")))


async def _until(cases: DemoApi, case_id: str, what: str, test: object,
                 timeout: float = 60) -> CaseView:
    deadline = time.monotonic() + timeout
    while True:
        view = await cases.view(case_id)
        if callable(test) and test(view):
            return view
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo: {case_id} did not reach '{what}' in {timeout:.0f}s")
        await asyncio.sleep(0.25)


async def _on_time(cases: DemoApi, council: str, policy: str) -> CaseView:
    view = await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                             reason="Budget gap flagged by the s151 officer", actor="officer:demo",
                             scope=["finance"], budget_gap_pence=420_000_000,
                             deadline_policy=policy)
    case_id = view.state.case_id
    _say(f"{COUNCILS[council]}: opened {case_id}")
    today = datetime.now(UTC).date()
    for command in journey(council, today, select_team=True):
        view = await cases.act(case_id, command)
        if isinstance(command, cmd.SelectPeerTeam):
            _say(f"{COUNCILS[council]}: the engine proposed {_team(view)}")
            member = next(p for p in view.state.proposed_team if p.role == "member")
            view = await cases.act(case_id, cmd.ObjectToPeer(
                actor=f"council:{council}", peer_id=member.peer_id,
                reason="Sat with our leader on a regional board last year"))
            _say(f"{COUNCILS[council]}: the council objected to {member.name}; the engine "
                 f"re-selected on the same seed: {_team(view)}")
    _say(f"{COUNCILS[council]}: every stage on time, {view.state.stage}")
    return view


async def _lapses(cases: DemoApi, council: str, policy: str) -> CaseView:
    view = await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                             reason="Governance concerns after a critical audit letter",
                             actor="officer:demo", deadline_policy=policy)
    case_id = view.state.case_id
    _say(f"{COUNCILS[council]}: opened {case_id}")
    steps = list(journey(council, datetime.now(UTC).date(), select_team=True))
    publish = next(i for i, c in enumerate(steps) if isinstance(c, cmd.PublishReport))
    for command in steps[:publish]:
        await cases.act(case_id, command)
    _say(f"{COUNCILS[council]}: report final; the council does not publish it…")
    await _until(cases, case_id, "escalation level 2", lambda v: any(
        e.deadline == DeadlineName.REPORT_PUBLICATION and e.level >= 2
        for e in v.state.escalations))
    _say(f"{COUNCILS[council]}: report publication lapsed, escalated to level 2 "
         "(chief executive, then LGA principal adviser)")
    for command in steps[publish:]:
        view = await cases.act(case_id, command)
    _say(f"{COUNCILS[council]}: published; escalation resolved; {view.state.stage}")
    return view


async def _withdrawn(cases: DemoApi, council: str, policy: str) -> CaseView:
    view = await cases.start(council=council, kind=CaseKind.FINANCE,
                             reason="Finance peer review requested", actor="officer:demo",
                             deadline_policy=policy)
    case_id = view.state.case_id
    await cases.act(case_id, cmd.ScopeCase(actor="officer:demo", scope=["finance"],
                                           visit_mode="remote"))
    asked = await cases.act(case_id, cmd.WithdrawCase(
        actor="officer:demo", reason="Council entered statutory intervention instead"))
    [request] = asked.state.awaiting_approval
    _say(f"{COUNCILS[council]}: withdrawal requested; it waits for a second person")
    view = await cases.act(case_id, cmd.ApproveRequest(actor="lga_adviser:demo-adviser",
                                                       request_id=request.request_id))
    _say(f"{COUNCILS[council]}: {case_id} withdrawn with a reason, approved by an LGA adviser")
    return view


def _team(view: CaseView) -> str:
    return ", ".join(f"{p.name} ({p.role.replace('_', ' ')})" for p in view.state.proposed_team)


def _table(views: list[CaseView]) -> str:
    rows = [{"case": v.state.case_id, "council": COUNCILS.get(v.state.council or "", ""),
             "stage": v.state.stage.label if v.state.stage else "",
             "events": str(v.state.version),
             "escalations": f"{v.state.escalations_raised} raised, "
                            f"{v.state.escalations_resolved} resolved"} for v in views]
    return render.table(rows, ["case", "council", "stage", "events", "escalations"])


async def _notices_told(store: EventStore, mail: MailSettings | None,
                        case_ids: list[str]) -> str:
    """Wait (at most a minute) for the relay to finish with the demo cases' notices; say
    what became of them."""
    def of_the_demo() -> list[NoticeDelivery]:
        now = datetime.now(UTC)
        return [d for case_id in case_ids for d in deliveries_of(store, case_id=case_id,
                                                                  now=now)]

    deadline = time.monotonic() + 60
    found = await asyncio.to_thread(of_the_demo)
    while mail is not None and time.monotonic() < deadline and any(
            d.status == "pending" for d in found):
        await asyncio.sleep(0.25)
        found = await asyncio.to_thread(of_the_demo)
    counts: dict[str, int] = {}
    for d in found:
        counts[d.status] = counts.get(d.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if mail is None:
        return (f"Notices: {len(found)} kept in the outbox, not sent (set CASES_SMTP_URL, e.g. "
                "to `cases dev --mail-sink`'s, to send them); `cases outbox` lists them.")
    return (f"Notices: {len(found)} emailed through {mail.server}: {summary}; `cases outbox` "
            "lists who was told what.")


def _busiest(store: EventStore) -> tuple[str, int]:
    """The case with the most events (ties: the first by id), and how many."""
    query = (sa.select(events.c.case_id, sa.func.max(events.c.version).label("events"))
             .where(events.c.case_id != CHECKPOINT_STREAM).group_by(events.c.case_id)
             .order_by(sa.desc("events"), events.c.case_id).limit(1))
    with store.engine.connect() as conn:
        case_id, count = conn.execute(query).one()
    return str(case_id), int(count)


async def run_demo(unit_seconds: int = 2) -> int:
    started = time.monotonic()
    store: EventStore = open_store()
    store.migrate()
    today = datetime.now(UTC).date()
    pool = import_pool(store, demo_pool(today), f"demo pool as of {today}")
    policy = demo_policy_name(unit_seconds)
    print(f"Demo: dev server + worker, store {store.engine.url}, deadlines in units of "
          f"{unit_seconds}s; peer pool version {pool.version} ({pool.peer_count} peers)",
          flush=True)
    ensure_demo_users(store)
    ensure_demo_contacts(store)
    mail = mail_settings()
    demo_terms = PolicyBook(demo_mode=True)
    settings = ApiSettings(session_secret=os.urandom(32), secure_cookies=False,
                           sign_in_rate="60/minute")  # six demo users sign in at once
    async with (dev_server(_free_port()) as client,
                build_worker(client, store, policies=demo_terms),
                relaying(store, mail),
                projecting(store, demo_terms),
                serving(create_app(Engine(store=store, temporal=client), settings),
                        "127.0.0.1", _free_port()) as api_url,
                httpx.AsyncClient(base_url=api_url, timeout=120) as http):
        print(f"API at {api_url}; demo users signed in with the demo password", flush=True)
        cases = DemoApi(http)
        await cases.sign_in()
        history = await cases.import_history(DEMO_HISTORY.read_bytes())
        _say(f"history: {history['rows']} past peer challenges ({len(history['imported'])} "
             f"imported now, {len(history['already'])} before); "
             f"{len(history['under_way'])} under way, followed from their real dates")
        views = list(await asyncio.gather(_on_time(cases, "E09000008", policy),
                                          _lapses(cases, "E08000025", policy),
                                          _withdrawn(cases, "E06000001", policy)))
        told = await _notices_told(store, mail, [v.state.case_id for v in views]
                                   + list(history["under_way"]))
    print("\nCases:\n" + _table(views))
    escalated = views[1].state.case_id
    print(f"\nTimeline of {escalated}:\n" + render.timeline(store.read_case(escalated)))
    verdict = verify_all(store)
    print(f"\nverify: {'intact' if verdict.ok else 'TAMPERED'} — {verdict.cases} case(s), "
          f"{verdict.events} event(s)")
    for problem in verdict.problems:
        print(f"  {problem}")
    print(f"\n{told}")
    print(f"\n`cases peers explain {views[0].state.case_id}` re-runs its team selection.")
    busiest, count = _busiest(store)
    print(f"\nWeb pages (the demo served them at {api_url} while it ran; `cases dev` serves "
          f"this store at {DEFAULT_API_URL}):\n"
          f"  {DEFAULT_API_URL}/register  the public register, no sign-in\n"
          f"  {DEFAULT_API_URL}/cases/{busiest}  the busiest case ({count} events; sign in "
          "as demo-officer)")
    print(f"\nDone in {time.monotonic() - started:.0f}s. The store stays at {store.engine.url}: "
          f"try `cases history {escalated}` and `cases verify`.\nNext: `cases dev` serves the "
          f"API on this store with the demo users (password {DEMO_PASSWORD!r}); `cases login "
          "demo-officer` in another terminal, then act as the README shows.")
    store.dispose()
    all_closed = all(v.state.stage in (Stage.CLOSED, Stage.WITHDRAWN) for v in views)
    return 0 if verdict.ok and all_closed else 1
