"""Record case workflow histories for the replay test (tests/test_workflow_replay.py).

Runs journeys on the time-skipping test server with a worker and a throwaway SQLite store,
and writes each workflow's history as JSON beside this file. Run it again, and commit the
files, only when a change to the workflow is *meant* to be incompatible (and old cases have
been migrated or versioned with `workflow.patched`); otherwise the old files are the point.
After a patched change, record a new generation beside the old files (never over them), so
cases started before and after the change are both replayed:

    .venv/bin/python tests/histories/record_histories.py            # full_journey.json, …
    .venv/bin/python tests/histories/record_histories.py timer-kept # full_journey.timer-kept.json
    .venv/bin/python tests/histories/record_histories.py "" peer_selection   # one journey only
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import demo_team, document
from application.setup import register_search_attributes
from domain import commands as cmd
from domain.deadlines import DeadlinePolicy
from domain.peers import demo_pool
from domain.vocabulary import CaseKind, Stage, VisitMode
from eventstore import open_store
from eventstore.peers import import_pool
from runtime.binaries import time_skipping_test_server
from runtime.converter import DATA_CONVERTER
from worker import build_worker
from workflows.messages import CaseView, workflow_id_for_case

HERE = Path(__file__).parent
OFFICER = "officer:recorder"
Journey = Callable[[WorkflowEnvironment, CaseClient], Awaitable[str]]


async def _today(env: WorkflowEnvironment) -> date:
    return (await env.get_current_time()).date()


async def _open(env: WorkflowEnvironment, cases: CaseClient, council: str) -> str:
    view = await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                             reason="Budget gap flagged by the s151 officer", actor=OFFICER,
                             scope=["finance"], budget_gap_pence=420_000_000,
                             policy=DeadlinePolicy(), now=await env.get_current_time())
    return view.state.case_id


async def _to_draft(env: WorkflowEnvironment, cases: CaseClient, case_id: str,
                    council: str) -> None:
    """From requested to the draft report sent, with one objection on the way."""
    team = demo_team(council)
    await cases.act(case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                                           visit_mode=VisitMode.ON_SITE))
    await cases.act(case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team))
    await cases.act(case_id, cmd.ObjectToPeer(actor=f"council:{council}",
                                              peer_id=team[2].peer_id, reason="A conflict"))
    await cases.act(case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team[:2] + team[3:]))
    await cases.act(case_id, cmd.ConfirmPeerTeam(actor=OFFICER))
    today = await _today(env)
    await cases.act(case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                               starts_on=today + timedelta(days=7),
                                               ends_on=today + timedelta(days=9)))
    await env.sleep(timedelta(days=10))
    await cases.act(case_id, cmd.RecordVisit(actor=OFFICER, started_on=today + timedelta(days=7),
                                             ended_on=today + timedelta(days=9)))
    await cases.act(case_id, cmd.GiveFeedback(actor=OFFICER, given_on=today + timedelta(days=9),
                                              summary="Strong leadership; plan the money."))
    await env.sleep(timedelta(days=14))
    await cases.act(case_id, cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                                             sent_on=await _today(env)))


async def _after_report(env: WorkflowEnvironment, cases: CaseClient, case_id: str,
                        council: str) -> CaseView:
    """From the report published to closed, each step in time."""
    contact = f"council:{council}"
    await env.sleep(timedelta(days=30))
    await cases.act(case_id, cmd.PublishActionPlan(
        actor=contact, published_on=await _today(env), url=f"https://example.org/{council}/plan"))
    await env.sleep(timedelta(days=100))
    today = await _today(env)
    await cases.act(case_id, cmd.HoldProgressReview(
        actor=OFFICER, started_on=today - timedelta(days=1), ended_on=today))
    await env.sleep(timedelta(days=30))
    await cases.act(case_id, cmd.PublishProgressReview(
        actor=contact, published_on=await _today(env),
        url=f"https://example.org/{council}/review"))
    return await cases.act(case_id, cmd.CloseCase(actor=OFFICER, summary="Plan delivered."))


async def full_journey(env: WorkflowEnvironment, cases: CaseClient) -> str:
    """Every action of a corporate peer challenge, on time, to closed."""
    council = "E06000001"
    case_id = await _open(env, cases, council)
    await _to_draft(env, cases, case_id, council)
    await env.sleep(timedelta(days=5))
    await cases.act(case_id, cmd.SubmitFactualAccuracyComments(
        actor=f"council:{council}", comments="Paragraph 4: reserves are £12m."))
    await cases.act(case_id, cmd.FinaliseReport(actor=OFFICER, document_sha256=document("final")))
    await cases.act(case_id, cmd.CorrectReport(actor=OFFICER, reason="A name misspelt",
                                               document_sha256=document("corrected")))
    await env.sleep(timedelta(days=30))
    await cases.act(case_id, cmd.PublishReport(
        actor=f"council:{council}", published_on=await _today(env),
        url=f"https://example.org/{council}/report"))
    closed = await _after_report(env, cases, case_id, council)
    assert closed.state.stage == Stage.CLOSED and not closed.state.missed_deadlines
    return case_id


async def lapse_and_escalate(env: WorkflowEnvironment, cases: CaseClient) -> str:
    """The check lapses (made final as drafted), publication lapses and climbs the ladder to
    level 3; the council publishes (resolved) and the case then runs on to closed."""
    council = "E08000025"
    case_id = await _open(env, cases, council)
    await _to_draft(env, cases, case_id, council)
    await env.sleep(timedelta(days=15))
    await _until(cases, case_id, lambda v: v.state.stage == Stage.REPORT_FINAL)
    view = await cases.view(case_id)
    assert view.state.visit_recorded_at is not None
    await env.sleep(view.state.visit_recorded_at + timedelta(days=91 + 7)
                    - await env.get_current_time())
    for level in (1, 2, 3):
        if level > 1:
            await env.sleep(timedelta(days=14))
        await _until(cases, case_id, _at_level(level))
    published = await cases.act(case_id, cmd.PublishReport(
        actor=f"council:{council}", published_on=await _today(env),
        url=f"https://example.org/{council}/report"))
    assert published.state.escalations == () and published.state.escalations_resolved == 1
    await _after_report(env, cases, case_id, council)
    return case_id


def _at_level(level: int) -> Callable[[CaseView], bool]:
    def reached(view: CaseView) -> bool:
        return any(e.level == level for e in view.state.escalations)

    return reached


async def _until(cases: CaseClient, case_id: str, test: Callable[[CaseView], bool]) -> None:
    for _ in range(250):
        if test(await cases.view(case_id)):
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{case_id}: the engine did not act on its deadline")


async def peer_selection(env: WorkflowEnvironment, cases: CaseClient) -> str:
    """The engine selects the team from the pool; the council objects to a peer and the
    engine re-selects; the team is confirmed, the visit scheduled; then withdrawn."""
    council = "E09000008"
    case_id = await _open(env, cases, council)
    await cases.act(case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                                           visit_mode=VisitMode.ON_SITE))
    today = await _today(env)
    visit_from, visit_to = today + timedelta(days=30), today + timedelta(days=32)
    view = await cases.act(case_id, cmd.SelectPeerTeam(actor=OFFICER, visit_from=visit_from,
                                                       visit_to=visit_to))
    member = next(p for p in view.state.proposed_team if p.role == "member")
    view = await cases.act(case_id, cmd.ObjectToPeer(actor=f"council:{council}",
                                                     peer_id=member.peer_id, reason="A conflict"))
    assert view.state.team_selected_by == "engine" and view.state.version == 5
    await cases.act(case_id, cmd.ConfirmPeerTeam(actor=OFFICER))
    await cases.act(case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                               starts_on=visit_from, ends_on=visit_to))
    return (await cases.act(case_id, cmd.WithdrawCase(actor=OFFICER,
                                                      reason="Recorded enough"))).state.case_id


JOURNEYS: dict[str, Journey] = {
    "full_journey": full_journey,
    "lapse_and_escalate": lapse_and_escalate,
    "peer_selection": peer_selection,
}


async def record(env: WorkflowEnvironment, journey: Journey) -> WorkflowHistory:
    """Run one journey on `env` (time-skipping) with its own worker and store; its history."""
    with tempfile.TemporaryDirectory() as scratch:
        store = open_store(f"sqlite:///{scratch}/cases.db")
        store.migrate()
        import_pool(store, demo_pool(await _today(env)), "demo pool")
        task_queue = f"record-{uuid.uuid4().hex[:8]}"
        try:
            async with build_worker(env.client, store, task_queue):
                cases = CaseClient(env.client, task_queue=task_queue, store=store)
                case_id = await journey(env, cases)
                handle = env.client.get_workflow_handle(workflow_id_for_case(case_id),
                                                        result_type=CaseView)
                await handle.result()
                return await handle.fetch_history()
        finally:
            store.dispose()


async def main(out: Path = HERE, generation: str = "",
               names: list[str] | None = None) -> list[Path]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_test_server(),
        data_converter=DATA_CONVERTER)
    written: list[Path] = []
    async with env:
        await register_search_attributes(env.client)
        for name, journey in JOURNEYS.items():
            if names and name not in names:
                continue
            history = await record(env, journey)
            path = out / (f"{name}.{generation}.json" if generation else f"{name}.json")
            path.write_text(history.to_json() + "\n")
            written.append(path)
            print(f"{path}: {len(history.events)} events")
    return written


if __name__ == "__main__":
    asyncio.run(main(generation=sys.argv[1] if len(sys.argv) > 1 else "",
                     names=sys.argv[2:]))
