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

The payloads are signed, as every command a production worker accepts is
(runtime/signing.py), with a key made for the recording and then thrown away: a history
replays without the key (runtime.converter.READING_CONVERTER, as `cases audit replay` does).
Generations recorded before signing (every one before `checked-opening`) are unsigned.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from application.cases import ActionRefused, CaseClient
from application.journey import demo_team, document
from application.setup import register_search_attributes
from domain import commands as cmd
from domain.peers import demo_pool
from domain.rules import approval_request_id
from domain.vocabulary import CaseKind, Stage, VisitMode
from eventstore import open_store
from eventstore.peers import import_pool
from runtime.binaries import time_skipping_test_server
from runtime.converter import signed_converter
from worker import build_worker
from workflows.messages import CaseView, case_id_for, workflow_id_for_case

HERE = Path(__file__).parent
OFFICER = "officer:recorder"
APPROVER = "lga_adviser:recorder-adviser"
"""The second pair of eyes: a hand-picked team, a correction and a withdrawal need one."""
Journey = Callable[[WorkflowEnvironment, CaseClient], Awaitable[str]]


async def _today(env: WorkflowEnvironment) -> date:
    return (await env.get_current_time()).date()


async def _open(env: WorkflowEnvironment, cases: CaseClient, council: str) -> str:
    view = await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                             reason="Budget gap flagged by the s151 officer", actor=OFFICER,
                             scope=["finance"], budget_gap_pence=420_000_000,
                             deadline_policy="standard", now=await env.get_current_time())
    return view.state.case_id


async def _approved(cases: CaseClient, case_id: str, command: cmd.AnyCommand) -> CaseView:
    """A sensitive action, asked for by its actor and approved by APPROVER."""
    asked = await cases.act(case_id, command)
    request_id = approval_request_id(command.action, asked.state.version)
    assert request_id in {a.request_id for a in asked.state.awaiting_approval}, request_id
    return await cases.act(case_id, cmd.ApproveRequest(actor=APPROVER, request_id=request_id))


async def _to_draft(env: WorkflowEnvironment, cases: CaseClient, case_id: str,
                    council: str) -> None:
    """From requested to the draft report sent, with one objection on the way."""
    team = demo_team(council)
    await cases.act(case_id, cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                                           visit_mode=VisitMode.ON_SITE))
    await _approved(cases, case_id, cmd.ProposePeerTeam(actor=OFFICER, team=team))
    await cases.act(case_id, cmd.ObjectToPeer(actor=f"council:{council}",
                                              peer_id=team[2].peer_id, reason="A conflict"))
    await _approved(cases, case_id, cmd.ProposePeerTeam(actor=OFFICER,
                                                        team=team[:2] + team[3:]))
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
    await _approved(cases, case_id, cmd.CorrectReport(actor=OFFICER, reason="A name misspelt",
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
    withdrawn = await _approved(cases, case_id, cmd.WithdrawCase(actor=OFFICER,
                                                                 reason="Recorded enough"))
    assert withdrawn.state.stage == Stage.WITHDRAWN
    return withdrawn.state.case_id


async def opening_refused(env: WorkflowEnvironment, cases: CaseClient) -> str:
    """A start the server refuses: a deadline policy it does not have. The opening check
    fails, `opened` answers with the refusal, the workflow fails and nothing is recorded."""
    now = await env.get_current_time()
    council = "E10000014"
    try:
        await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                          reason="On deadlines of my own", actor=OFFICER,
                          deadline_policy="forever", now=now)
    except ActionRefused as refused:
        assert "deadline policy 'forever' is not one of this server's" in str(refused), refused
    else:
        raise AssertionError("the server opened a case on a policy it does not have")
    return case_id_for(CaseKind.CORPORATE_PEER_CHALLENGE, council, now.year)


JOURNEYS: dict[str, Journey] = {
    "full_journey": full_journey,
    "lapse_and_escalate": lapse_and_escalate,
    "peer_selection": peer_selection,
    "opening_refused": opening_refused,
}
REFUSED = {"opening_refused"}
"""Journeys whose workflow fails (the server refused the start)."""


async def record(env: WorkflowEnvironment, journey: Journey,
                 refused: bool = False) -> WorkflowHistory:
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
                try:
                    await handle.result()
                except WorkflowFailureError:
                    if not refused:
                        raise
                else:
                    assert not refused, "the refused start's workflow did not fail"
                assert refused == (store.head(case_id)[0] == 0)
                return await handle.fetch_history()
        finally:
            store.dispose()


async def main(out: Path = HERE, generation: str = "",
               names: list[str] | None = None) -> list[Path]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_test_server(),
        data_converter=signed_converter(os.urandom(32)))
    written: list[Path] = []
    async with env:
        await register_search_attributes(env.client)
        for name, journey in JOURNEYS.items():
            if names and name not in names:
                continue
            history = await record(env, journey, refused=name in REFUSED)
            path = out / (f"{name}.{generation}.json" if generation else f"{name}.json")
            path.write_text(history.to_json() + "\n")
            written.append(path)
            print(f"{path}: {len(history.events)} events")
    return written


if __name__ == "__main__":
    asyncio.run(main(generation=sys.argv[1] if len(sys.argv) > 1 else "",
                     names=sys.argv[2:]))
