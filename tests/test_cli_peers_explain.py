"""`cases peers explain CASE`: an auditor re-runs every recorded proposal from its event.

The case's events are written straight into the store, as the workflow writes them (the
workflow's own path is tests/test_workflow_peer_selection.py): an engine proposal, the
council's objection and the engine's replacement, and, in another case, a hand-picked team.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain import events as ev
from domain.councils import BUILT_IN_COUNCILS, register_digest
from domain.peer_selection import ALGORITHM, propose_or_explain, seed_for_case
from domain.peers import SelectionRules, demo_pool
from domain.vocabulary import CaseKind
from eventstore import EventStore, NewEvent
from eventstore.councils import import_councils
from eventstore.peers import PoolVersion, import_pool, load_pool
from tests.support import run_cli

AS_OF = date(2026, 6, 1)
COUNCIL = "E06000001"
CPC = CaseKind.CORPORATE_PEER_CHALLENGE


@pytest.fixture
def database(sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    sqlite_store.migrate()
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    return sqlite_store


def record(pool: PoolVersion, case_id: str, excluded: list[str]) -> ev.PeerSelectionRecord:
    return ev.PeerSelectionRecord(
        algorithm=ALGORITHM, seed=seed_for_case(case_id), pool_version=pool.version,
        pool_digest=pool.digest, scope=["finance", "governance"],
        visit_from=AS_OF + timedelta(days=30), visit_to=AS_OF + timedelta(days=32),
        rules=SelectionRules(), excluded=excluded)


def write_case(store: EventStore, case_id: str, *later: tuple[str, ev.Event]) -> None:
    opening: list[tuple[str, ev.Event]] = [
        ("officer:a", ev.CaseRequested(council=COUNCIL, kind=CPC, reason="Budget gap")),
        ("officer:a", ev.CaseScoped(scope=["finance", "governance"], visit_mode="on_site")),
    ]
    at = datetime(2026, 6, 1, 9, tzinfo=UTC)
    store.append(case_id, 0, [
        NewEvent(event_id=str(uuid.uuid4()), type=event.type_name(),
                 schema_version=event.schema_version, occurred_at=at + timedelta(minutes=i),
                 actor=actor, payload=event.payload())
        for i, (actor, event) in enumerate([*opening, *later])])


def proposal(pool: PoolVersion, case_id: str, store: EventStore,
             excluded: list[str]) -> ev.PeerTeamProposed:
    chosen = propose_or_explain(record(pool, case_id, excluded), BUILT_IN_COUNCILS[COUNCIL],
                                BUILT_IN_COUNCILS, load_pool(store, pool.version), CPC)
    assert isinstance(chosen, ev.PeerTeamProposed)
    return chosen


def explain(case_id: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = run_cli(["peers", "explain", case_id, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_every_engine_proposal_is_reproduced_and_a_hand_picked_team_is_named(
        database: EventStore, capsys: pytest.CaptureFixture[str]) -> None:
    pool = import_pool(database, demo_pool(AS_OF), "demo")
    case_id = "cpc-E06000001-2026"
    first = proposal(pool, case_id, database, [])
    objected = first.team[2].peer_id
    second = proposal(pool, case_id, database, [objected])
    write_case(database, case_id, ("officer:a", first),
               (f"council:{COUNCIL}", ev.PeerObjectedTo(peer_id=objected, reason="Conflict")),
               ("system:peer-selection", second))

    code, out = explain(case_id, capsys)
    assert code == 0 and out["all_reproduced"] is True
    assert [(p["version"], p["selected_by"], p["reproduced"]) for p in out["proposals"]] == [
        (3, "engine", True), (5, "engine", True)]
    assert out["proposals"][1]["excluded"] == [objected]

    assert run_cli(["peers", "explain", case_id]) == 0
    text = capsys.readouterr().out
    assert text.count("reproduced exactly") == 2 and f"objected to: {objected}" in text

    hand_picked = "cpc-E06000001-2027"
    write_case(database, hand_picked, ("officer:b", ev.PeerTeamProposed(
        team=first.team, selected_by="officer")))
    code, out = explain(hand_picked, capsys)
    assert code == 0
    assert [(p["actor"], p["selected_by"]) for p in out["proposals"]] == [
        ("officer:b", "officer")]
    assert run_cli(["peers", "explain", hand_picked]) == 0
    assert "HAND-PICKED by an officer" in capsys.readouterr().out


def test_a_proposal_the_rules_would_not_make_is_not_reproduced(
        database: EventStore, capsys: pytest.CaptureFixture[str]) -> None:
    """A team recorded as the engine's but swapped for a friendlier peer: exit 3, the seat."""
    pool = import_pool(database, demo_pool(AS_OF), "demo")
    case_id = "cpc-E06000001-2026"
    honest = proposal(pool, case_id, database, [])
    friend = next(p for p in load_pool(database, pool.version)
                  if p.peer_id not in {s.peer_id for s in honest.team}
                  and p.home_council not in (None, COUNCIL))
    swapped = [*honest.team]
    swapped[3] = swapped[3].model_copy(update={"peer_id": friend.peer_id, "name": friend.name,
                                               "home_council": friend.home_council})
    write_case(database, case_id, ("officer:a", honest.model_copy(update={"team": swapped})))

    code, out = explain(case_id, capsys)
    assert code == 3 and out["all_reproduced"] is False
    [difference] = out["proposals"][0]["differences"]
    assert difference.startswith(f"seat 4: recorded {friend.peer_id}")


def test_explain_needs_a_known_case(database: EventStore,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["peers", "explain", "cpc-E06000001-1999"]) == 2
    assert "case cpc-E06000001-1999 is not in the store" in capsys.readouterr().err
    assert run_cli(["peers", "explain"]) == 2


def test_explain_says_when_the_council_register_changed_since_the_selection(
        database: EventStore, capsys: pytest.CaptureFixture[str]) -> None:
    pool = import_pool(database, demo_pool(AS_OF), "demo")
    case_id = "cpc-E06000001-2026"
    chosen = proposal(pool, case_id, database, [])
    assert chosen.selection is not None
    pinned = chosen.model_copy(update={"selection": chosen.selection.model_copy(
        update={"councils_digest": register_digest(BUILT_IN_COUNCILS)})})
    write_case(database, case_id, ("officer:a", pinned))
    code, out = explain(case_id, capsys)
    assert code == 0 and out["proposals"][0]["register_changed"] is False

    # A neighbour renamed: the same team, but a candidate's reason names it differently now.
    renamed = BUILT_IN_COUNCILS["E06000047"].model_copy(update={"short_name": "Durham"})
    import_councils(database, [renamed])
    code, out = explain(case_id, capsys)
    [changed] = out["proposals"]
    assert code == 3 and changed["register_changed"] is True
    assert changed["differences"][0].startswith("rationale line ")
    assert run_cli(["peers", "explain", case_id]) == 3
    assert "the council register has changed since this selection" in capsys.readouterr().out
