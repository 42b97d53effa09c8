"""The case workflow selects its peer team from the pool, takes objections, and confirms.

Time-skipping server, a real worker and a SQLite store holding a peer pool (the demo pool
over the built-in councils, or a deliberately thin one). What an officer and an auditor
would see: who was proposed and by whom, the objected peer replaced on the same seed and
pool, a team that cannot be filled saying why, and every proposal reproducible from its event,
with no personal data of a peer who is not on the team in the store or in Temporal's history.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from application.cases import ActionRefused
from domain import commands as cmd
from domain import events as ev
from domain.councils import BUILT_IN_COUNCILS, register_digest
from domain.peer_selection import reproduce, seed_for_case
from domain.peers import PeerKind, demo_pool
from domain.upcasting import parse_event
from domain.vocabulary import CaseKind, Stage, VisitMode
from eventstore.deliveries import notices_for_case as case_notifications
from eventstore.peers import erase_peer, import_pool, load_pool
from eventstore.schema import councils
from tests.conftest import CaseWorld
from tests.test_workflow_journey import (
    OFFICER,
    Journeys,
    a_council,
    act,
    assert_store_agrees,
    contact,
)
from workflows.messages import workflow_id_for_case

CPC_SCOPE = ["finance", "governance"]
CPC = CaseKind.CORPORATE_PEER_CHALLENGE


@pytest_asyncio.fixture
async def journeys(case_world: CaseWorld) -> AsyncIterator[Journeys]:
    j = Journeys(case_world)
    yield j


async def scoped(j: Journeys, council: str) -> str:
    case_id = (await j.open(council)).state.case_id
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=CPC_SCOPE,
                                        visit_mode=VisitMode.ON_SITE), Stage.SCOPED,
              ev.CaseScoped)
    return case_id


def proposals(j: Journeys, case_id: str) -> list[tuple[str, ev.PeerTeamProposed]]:
    found = []
    for stored in j.store.read_case(case_id):
        event = parse_event(stored.type, stored.schema_version, stored.payload)
        if isinstance(event, ev.PeerTeamProposed):
            found.append((stored.actor, event))
    return found


async def test_the_engine_proposes_replaces_an_objected_peer_and_the_team_is_confirmed(
        journeys: Journeys) -> None:
    j = journeys
    today = await j.today()
    pool = import_pool(j.store, demo_pool(today), "demo pool")
    council = "E06000001"  # Hartlepool, built in
    case_id = await scoped(j, council)
    visit_from, visit_to = today + timedelta(days=30), today + timedelta(days=33)

    view = await act(j, case_id, cmd.SelectPeerTeam(actor=OFFICER, visit_from=visit_from,
                                                    visit_to=visit_to),
                     Stage.SCOPED, ev.PeerTeamProposed)
    first = view.state.proposed_team
    assert view.state.team_selected_by == "engine"
    assert [p.role for p in first][:2] == ["lead_member", "lead_officer"]
    assert first[-1].role == "challenge_manager"
    assert all(p.home_council != council for p in first)
    [(actor, proposed)] = proposals(j, case_id)
    assert actor == OFFICER and proposed.selection is not None
    assert proposed.selection.seed == seed_for_case(case_id)
    assert (proposed.selection.pool_version, proposed.selection.pool_digest) == (
        pool.version, pool.digest)
    assert (proposed.selection.visit_from, proposed.selection.visit_to) == (visit_from, visit_to)
    assert proposed.selection.councils_digest == register_digest(BUILT_IN_COUNCILS)
    assert proposed.rationale[0].startswith(f"peer-selection/1; seed {seed_for_case(case_id)}")
    assert len(proposed.rationale) == 2 and proposed.reasons is not None

    # Nobody off the team is named, and no group or interest is kept: not in the store, not
    # in the history Temporal keeps of the case (the activity's answer is the event).
    peers = load_pool(j.store, pool.version)
    seated, named = {p.peer_id for p in first}, {p.name for p in first}
    stored = json.dumps([e.payload for e in j.store.read_case(case_id)], ensure_ascii=False)
    history = await j.env.client.get_workflow_handle(
        workflow_id_for_case(case_id)).fetch_history()
    kept = b"".join(e.SerializeToString() for e in history.events)
    assert first[0].name.encode() in kept, "the team is the decision: it is named there"
    strangers = [p for p in peers if p.peer_id not in seated and p.name not in named]
    assert len(strangers) > 250
    for peer in strangers:
        assert peer.name not in stored and peer.name.encode() not in kept, peer.peer_id
    for group in {p.political_group for p in peers} - {None}:
        assert f'"{group}"' not in stored and f'"{group}"'.encode() not in kept
    assert "declared an interest" not in stored and b"declared an interest" not in kept

    objected = next(p for p in first if p.role == "member")
    view = await act(j, case_id, cmd.ObjectToPeer(actor=contact(council), peer_id=objected.peer_id,
                                                  reason="Served with our leader on a board"),
                     Stage.SCOPED, ev.PeerObjectedTo, ev.PeerTeamProposed)
    second = view.state.proposed_team
    assert objected.peer_id not in {p.peer_id for p in second}
    assert {p.peer_id for p in first if p != objected} <= {p.peer_id for p in second}
    (_, _), (actor, replaced) = proposals(j, case_id)
    assert actor == "system:peer-selection" and replaced.selection is not None
    assert replaced.selection.excluded == [objected.peer_id]
    assert replaced.selection.seed == proposed.selection.seed
    notices = [n.subject for n in case_notifications(j.store, case_id)]
    assert notices.count(f"{case_id}: proposed peer team") == 2

    for event in (proposed, replaced):  # an auditor re-runs each proposal from its event
        again = reproduce(event, BUILT_IN_COUNCILS[council], BUILT_IN_COUNCILS, peers,
                          view.state.kind or pytest.fail("no kind"))
        assert again.same, again.differences

    view = await act(j, case_id, cmd.ConfirmPeerTeam(actor=OFFICER), Stage.PEERS_SELECTED,
                     ev.PeerTeamConfirmed)
    assert view.state.team == second
    with pytest.raises(ActionRefused, match=f"selected as accredited and available from "
                                            f"{visit_from} to {visit_to}"):
        await j.cases.act(case_id, cmd.ScheduleVisit(
            actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=visit_to,
            ends_on=visit_to + timedelta(days=1)))
    view = await act(j, case_id, cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE,
                                                   starts_on=visit_from, ends_on=visit_to),
                     Stage.VISIT_SCHEDULED, ev.VisitScheduled)
    assert_store_agrees(j, view)


async def test_a_peer_erased_from_the_pool_is_never_proposed_again_and_old_teams_reproduce(
        journeys: Journeys) -> None:
    """The lead member asks for their personal data to be erased while the council objects to
    another peer: the re-selection (same seed, same pool) leaves them out, though the worker
    had the pool loaded already; both proposals still reproduce from their events."""
    j = journeys
    today = await j.today()
    pool = import_pool(j.store, demo_pool(today), "demo pool")
    council = "E06000001"
    case_id = await scoped(j, council)
    view = await act(j, case_id, cmd.SelectPeerTeam(
        actor=OFFICER, visit_from=today + timedelta(days=30),
        visit_to=today + timedelta(days=33)), Stage.SCOPED, ev.PeerTeamProposed)
    lead, objected = view.state.proposed_team[0], view.state.proposed_team[2]
    assert erase_peer(j.store, lead.peer_id, "erasure request ER-1")
    view = await act(j, case_id, cmd.ObjectToPeer(actor=contact(council),
                                                  peer_id=objected.peer_id, reason="Conflict"),
                     Stage.SCOPED, ev.PeerObjectedTo, ev.PeerTeamProposed)
    assert lead.peer_id not in {p.peer_id for p in view.state.proposed_team}
    (_, first), (_, second) = proposals(j, case_id)
    assert second.reasons is not None and second.reasons[ev.ReasonCode.ERASED] == [lead.peer_id]
    peers = load_pool(j.store, pool.version)
    for event in (first, second):
        again = reproduce(event, BUILT_IN_COUNCILS[council], BUILT_IN_COUNCILS, peers, CPC)
        assert again.same, again.differences


async def test_a_team_that_cannot_be_filled_says_which_requirement_ran_out(
        journeys: Journeys) -> None:
    j = journeys
    today = await j.today()
    officers_only = [p for p in demo_pool(today) if p.kind != PeerKind.COUNCILLOR]
    import_pool(j.store, officers_only, "no councillors")
    council = "E08000025"  # Birmingham, built in
    case_id = await scoped(j, council)

    view = await act(j, case_id, cmd.SelectPeerTeam(
        actor=OFFICER, visit_from=today + timedelta(days=20),
        visit_to=today + timedelta(days=21)), Stage.SCOPED, ev.PeerTeamCannotBeFilled)
    assert view.state.selection_problem is not None
    assert view.state.selection_problem.startswith("lead_member: ")
    assert view.state.proposed_team == ()
    notices = [n.subject for n in case_notifications(j.store, case_id)]
    assert f"{case_id}: the peer team cannot be filled" in notices
    with pytest.raises(ActionRefused, match="no peer team has been proposed yet"):
        await j.cases.act(case_id, cmd.ConfirmPeerTeam(actor=OFFICER))
    assert_store_agrees(j, view)


async def test_selection_without_a_pool_or_for_an_unknown_council_records_nothing(
        journeys: Journeys) -> None:
    j = journeys
    today = await j.today()
    select = cmd.SelectPeerTeam(actor=OFFICER, visit_from=today + timedelta(days=10),
                                visit_to=today + timedelta(days=11))
    known = await scoped(j, "E06000047")  # County Durham, built in
    position = j.store.last_position()
    with pytest.raises(ActionRefused, match="no peer pool has been imported"):
        await j.cases.act(known, select)
    assert j.store.last_position() == position

    # A case opens only for a council in the register (tests/test_forged_commands.py); one
    # opened before that check, for a council the register does not hold, is refused here.
    import_pool(j.store, demo_pool(today), "demo pool")
    gone = a_council()
    unknown = await scoped(j, gone)
    with j.store.engine.begin() as conn:
        conn.execute(councils.delete().where(councils.c.gss_code == gone))
    position = j.store.last_position()
    with pytest.raises(ActionRefused, match=f"council {gone} is not in the register"):
        await j.cases.act(unknown, select)
    assert j.store.last_position() == position
    assert (await j.cases.view(unknown)).state.proposed_team == ()


async def test_a_selection_request_with_bad_dates_is_refused_before_anything_runs(
        journeys: Journeys) -> None:
    j = journeys
    today = await j.today()
    case_id = await scoped(j, "E07000223")  # Adur, built in
    with pytest.raises(ActionRefused, match="cannot select a team for a visit longer than"):
        await j.cases.act(case_id, cmd.SelectPeerTeam(
            actor=OFFICER, visit_from=today + timedelta(days=1),
            visit_to=today + timedelta(days=40)))
    with pytest.raises(ActionRefused, match="cannot select a peer team: only a case officer"):
        await j.cases.act(case_id, cmd.SelectPeerTeam(
            actor=contact("E07000223"), visit_from=today, visit_to=today))


async def test_the_rules_a_case_starts_with_are_the_rules_its_team_is_selected_by(
        journeys: Journeys) -> None:
    """A case started with a 2,000 km minimum distance finds nobody far enough away, and the
    record says which rules it ran."""
    j = journeys
    today = await j.today()
    import_pool(j.store, demo_pool(today), "demo pool")
    council = "E10000020"  # Norfolk, built in
    view = await j.cases.start(council=council, kind=CPC, actor=OFFICER, reason="Far peers",
                               deadline_policy="far-peers",  # the tests' server: 2,000 km
                               now=await j.now())
    case_id = view.state.case_id
    j.opened.append(case_id)
    await act(j, case_id, cmd.ScopeCase(actor=OFFICER, scope=CPC_SCOPE,
                                        visit_mode=VisitMode.REMOTE), Stage.SCOPED,
              ev.CaseScoped)
    view = await act(j, case_id, cmd.SelectPeerTeam(
        actor=OFFICER, visit_from=today + timedelta(days=5), visit_to=today + timedelta(days=6)),
        Stage.SCOPED, ev.PeerTeamCannotBeFilled)
    assert view.state.selection_problem is not None
    assert view.state.selection_problem.endswith("from councils within 2000 km")
    unfilled = parse_event("PeerTeamCannotBeFilled", 1,
                           j.store.read_case(case_id)[-1].payload)
    assert isinstance(unfilled, ev.PeerTeamCannotBeFilled)
    assert unfilled.selection.rules.min_distance_km == 2000
