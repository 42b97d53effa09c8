"""Two officers act on one case at the same instant: one applies, the other is refused."""

from __future__ import annotations

import asyncio

from application.cases import ActionRefused
from application.journey import document, journey
from domain import commands as cmd
from domain.vocabulary import CaseKind
from eventstore.verify import verify
from tests.conftest import CaseWorld
from tests.support import register_council


async def test_two_officers_finalising_at_once_one_applies_the_other_is_refused(
    case_world: CaseWorld,
) -> None:
    """Promise: conflicting actions never both apply; the loser hears why; nothing is lost."""
    cases = case_world.cases
    register_council(case_world.store, "E06000006")  # a case opens only for a council it knows
    view = await cases.start(council="E06000006", kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                             reason="Conflict test", actor="officer:a")
    case_id = view.state.case_id
    today = (view.state.last_event_at or view.state.requested_at)
    assert today is not None
    for step in journey("E06000006", today.date()):
        if isinstance(step, cmd.FinaliseReport):
            break
        await cases.act(case_id, step)
    before = case_world.store.last_position()

    results = await asyncio.gather(
        cases.act(case_id, cmd.FinaliseReport(actor="officer:a",
                                               document_sha256=document("version A"))),
        cases.act(case_id, cmd.FinaliseReport(actor="officer:b",
                                               document_sha256=document("version B"))),
        return_exceptions=True)

    refused = [r for r in results if isinstance(r, ActionRefused)]
    applied = [r for r in results if not isinstance(r, BaseException)]
    assert len(applied) == 1 and len(refused) == 1, results
    assert "already final" in str(refused[0])
    stored = case_world.store.read_case(case_id)
    finals = [e for e in stored if e.type == "ReportMadeFinal"]
    assert len(finals) == 1
    assert case_world.store.last_position() == before + 1
    winner = applied[0].state.final_report
    assert winner is not None and finals[0].payload["document_sha256"] == winner.document_sha256
    assert verify(case_world.store, case_id).ok
