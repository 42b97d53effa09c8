"""`cases audit replay`: today's code replays the history, and the store matches it exactly."""

from __future__ import annotations

from application.audit_replay import audit_replay
from application.journey import journey
from domain.peers import demo_pool
from domain.vocabulary import CaseKind
from eventstore.peers import import_pool
from tests.conftest import CaseWorld
from workflows.messages import workflow_id_for_case


async def _journey(world: CaseWorld, council: str, *, select_team: bool = False) -> str:
    view = await world.cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                   reason="Audit test", actor="officer:a")
    assert view.state.requested_at is not None
    for step in journey(council, view.state.requested_at.date(), select_team=select_team):
        await world.cases.act(view.state.case_id, step)
    return view.state.case_id


async def test_a_case_whose_team_the_engine_selected_replays_and_matches(
        case_world: CaseWorld) -> None:
    """The selection activity's answer comes from the history: replay needs no pool."""
    today = (await case_world.env.get_current_time()).date()
    import_pool(case_world.store, demo_pool(today), "demo pool")
    case_id = await _journey(case_world, "E09000033", select_team=True)
    audit = await audit_replay(case_world.env.client, case_world.store, case_id,
                               workflow_id=workflow_id_for_case(case_id))
    assert audit.ok, audit.differences
    assert audit.appended == audit.stored == 15


async def test_an_untouched_case_replays_and_matches_the_store(case_world: CaseWorld) -> None:
    """A hand-picked team: its request and its approval (with the team) are appended too."""
    case_id = await _journey(case_world, "E06000001")
    audit = await audit_replay(case_world.env.client, case_world.store, case_id,
                               workflow_id=workflow_id_for_case(case_id))
    assert audit.ok, audit.differences
    assert audit.appended == audit.stored == 17


async def test_a_store_that_lost_or_gained_events_differs_from_the_history(
    case_world: CaseWorld,
) -> None:
    case_id = await _journey(case_world, "E08000025")
    stored = case_world.store.read_case(case_id)
    [team] = [e.version for e in stored if e.type == "PeerTeamProposed"]  # after its approval
    last = stored[-1]
    assert (team, last.version, last.type) == (5, 17, "CaseClosed")
    with case_world.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER events_no_delete")
        conn.exec_driver_sql("DROP TRIGGER events_no_update")
        conn.exec_driver_sql(f"DELETE FROM events WHERE case_id = '{case_id}' "
                             f"AND version = {last.version}")
        conn.exec_driver_sql("UPDATE events SET actor = 'officer:mallory' "  # not the approver
                             f"WHERE case_id = '{case_id}' AND version = {team}")
    audit = await audit_replay(case_world.env.client, case_world.store, case_id,
                               workflow_id=workflow_id_for_case(case_id))
    assert not audit.ok
    text = "\n".join(audit.differences)
    assert f"version {team}: PeerTeamProposed" in text and "differs" in text
    assert "CaseClosed" in text and "the store does not have it" in text
