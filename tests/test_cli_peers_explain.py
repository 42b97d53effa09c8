"""`cases peers explain CASE`: an auditor re-runs every recorded proposal from its event;
`cases peers erase PEER_ID`: an operator erases a peer's personal data from the pool.

The case's events are written straight into the store, as the workflow writes them (the
workflow's own path is tests/test_workflow_peer_selection.py): an engine proposal, the
council's objection and the engine's replacement, and, in another case, a hand-picked team;
and proposals as version 2 stored them, a line of words for every candidate.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain import events as ev
from domain.councils import BUILT_IN_COUNCILS, register_digest
from domain.peer_selection import (
    ALGORITHM,
    WORDS_ERASED,
    Rule,
    propose_or_explain,
    seed_for_case,
    select_for_record,
)
from domain.peers import Peer, PeerKind, SelectionRules, demo_pool
from domain.vocabulary import CaseKind
from eventstore import EventStore, NewEvent
from eventstore.councils import import_councils
from eventstore.peers import PoolVersion, import_pool, load_pool, pool_version
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


class AsStoredAtVersion2:
    """A PeerTeamProposed row as version 2 wrote it, before this change: the header and then
    a line of words for every candidate, no codes. Stored as it was, never rewritten."""

    def __init__(self, event: ev.PeerTeamProposed, pool: list[Peer]) -> None:
        assert event.selection is not None
        selection = select_for_record(event.selection, BUILT_IN_COUNCILS[COUNCIL],
                                      BUILT_IN_COUNCILS, pool, CPC)
        self.payload = event.payload()
        del self.payload["reasons"]
        self.payload["rationale"] = selection.rationale()


def write_case(store: EventStore, case_id: str,
               *later: tuple[str, ev.Event | AsStoredAtVersion2]) -> None:
    opening: list[tuple[str, ev.Event | AsStoredAtVersion2]] = [
        ("officer:a", ev.CaseRequested(council=COUNCIL, kind=CPC, reason="Budget gap")),
        ("officer:a", ev.CaseScoped(scope=["finance", "governance"], visit_mode="on_site")),
    ]
    at = datetime(2026, 6, 1, 9, tzinfo=UTC)
    rows = [("PeerTeamProposed", 2, event.payload) if isinstance(event, AsStoredAtVersion2)
            else (event.type_name(), event.schema_version, event.payload())
            for _, event in [*opening, *later]]
    store.append(case_id, 0, [
        NewEvent(event_id=str(uuid.uuid4()), type=type_name, schema_version=schema_version,
                 occurred_at=at + timedelta(minutes=i), actor=actor, payload=payload)
        for i, ((actor, _), (type_name, schema_version, payload))
        in enumerate(zip([*opening, *later], rows, strict=True))])


def stored_payload(store: EventStore, case_id: str, version: int) -> str:
    """The payload of the case's `version` as the store holds it, as JSON text."""
    [row] = [e for e in store.read_case(case_id) if e.version == version]
    return json.dumps(row.payload, ensure_ascii=False)


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
    peers = load_pool(database, pool.version)
    chosen = proposal(pool, "cpc-E06000001-2026", database, [])
    assert chosen.selection is not None
    pinned = chosen.model_copy(update={"selection": chosen.selection.model_copy(
        update={"councils_digest": register_digest(BUILT_IN_COUNCILS)})})
    write_case(database, "cpc-E06000001-2026", ("officer:a", pinned))
    write_case(database, "cpc-E06000001-2025", ("officer:a", AsStoredAtVersion2(pinned, peers)))
    for case_id in ("cpc-E06000001-2026", "cpc-E06000001-2025"):
        code, out = explain(case_id, capsys)
        assert code == 0 and out["proposals"][0]["register_changed"] is False

    # A neighbour renamed: the same team and codes; the words derived now name it differently.
    renamed = BUILT_IN_COUNCILS["E06000047"].model_copy(update={"short_name": "Durham"})
    import_councils(database, [renamed])
    code, out = explain("cpc-E06000001-2026", capsys)
    [changed] = out["proposals"]
    assert code == 0 and changed["register_changed"] is True
    assert any("Durham is" in c["reason"] for c in changed["candidates"])
    assert run_cli(["peers", "explain", "cpc-E06000001-2026"]) == 0
    assert "the council register has changed since this selection" in capsys.readouterr().out
    # An event from before codes recorded the words themselves: they differ now.
    code, out = explain("cpc-E06000001-2025", capsys)
    [changed] = out["proposals"]
    assert code == 3 and changed["register_changed"] is True
    assert changed["differences"][0].startswith("rationale line ")


# --- personal data: kept out of the record, erasable from the pool ------------------------


def selected_case(database: EventStore) -> tuple[str, PoolVersion, ev.PeerTeamProposed]:
    pool = import_pool(database, demo_pool(AS_OF), "demo")
    case_id = "cpc-E06000001-2026"
    chosen = proposal(pool, case_id, database, [])
    write_case(database, case_id, ("officer:a", chosen))
    return case_id, pool, chosen


def test_a_selection_is_stored_without_any_other_peers_personal_data_and_explained_in_words(
        database: EventStore, capsys: pytest.CaptureFixture[str]) -> None:
    case_id, pool, chosen = selected_case(database)
    peers = load_pool(database, pool.version)
    seated = {p.peer_id for p in chosen.team}
    named = {p.name for p in chosen.team}  # the made-up pool reuses names
    stored = stored_payload(database, case_id, 3)
    for peer in peers:
        if peer.peer_id not in seated and peer.name not in named:
            assert peer.name not in stored, peer.peer_id
    for group in {p.political_group for p in peers} - {None}:
        assert f'"{group}"' not in stored and f"{group} group" not in stored
    interested = [p for p in peers if COUNCIL in p.declared_interests]
    assert interested and "declared an interest" not in stored
    assert chosen.reasons is not None
    assert {p.peer_id for p in interested} <= {*chosen.reasons[Rule.DECLARED_INTEREST],
                                               *chosen.reasons[Rule.SUBJECT_COUNCIL]}

    code, out = explain(case_id, capsys)
    [explained] = out["proposals"]
    assert code == 0 and explained["reproduced"] is True
    assert [c["peer_id"] for c in explained["candidates"]] == sorted(p.peer_id for p in peers)
    words = {c["peer_id"]: c["reason"] for c in explained["candidates"]}
    assert all(words[p.peer_id] == "declared an interest in Hartlepool"
               for p in interested if words[p.peer_id].startswith("declared"))
    assert run_cli(["peers", "explain", case_id]) == 0
    text = capsys.readouterr().out
    assert f"every candidate of pool version {pool.version}" in text
    assert text.count(": excluded (") + text.count(": admitted (") == len(peers)


def test_after_erasure_every_case_and_digest_verifies_and_explain_marks_the_words_erased(
        database: EventStore, capsys: pytest.CaptureFixture[str]) -> None:
    case_id, pool, chosen = selected_case(database)
    peers = load_pool(database, pool.version)
    old_case = "cpc-E06000001-2025"
    write_case(database, old_case, ("officer:a", AsStoredAtVersion2(chosen, peers)))
    assert chosen.reasons is not None
    interested = chosen.reasons[Rule.DECLARED_INTEREST][0]
    lead_member = chosen.team[0]
    passed_over = next(p.peer_id for p in peers if p.kind == PeerKind.COUNCILLOR
                       and p.peer_id in chosen.reasons[Rule.ELIGIBLE]
                       and p.peer_id not in {s.peer_id for s in chosen.team})
    for peer_id in (interested, lead_member.peer_id, passed_over):
        assert run_cli(["peers", "erase", peer_id, "--all-pools",
                        "--reason", "erasure request ER-2026-17"]) == 0
        assert f"peer {peer_id} from pool version {pool.version}" in capsys.readouterr().out

    assert pool_version(database, pool.version).digest == pool.digest
    assert run_cli(["peers", "list"]) == 0  # loads only if every digest and hash verifies
    assert "(3 with personal data erased)" in capsys.readouterr().out
    assert run_cli(["verify", "--no-temporal"]) == 0
    assert "intact" in capsys.readouterr().out

    for case in (case_id, old_case):
        code, out = explain(case, capsys)
        [explained] = out["proposals"]
        assert code == 0 and explained["reproduced"] is True, explained["differences"]
        assert [s["peer_id"] for s in explained["team"]] == [s.peer_id for s in chosen.team]
        assert explained["erased_team"] == [lead_member.peer_id]
        marked = {c["peer_id"]: c for c in explained["candidates"] if c["erased"]}
        assert set(marked) == {interested, lead_member.peer_id, passed_over}
        assert {c["reason"] for c in marked.values()} == {WORDS_ERASED}
        assert marked[interested]["reason_code"] == "declared_interest"
        assert {interested, passed_over} <= set(explained["from_record"])
    assert run_cli(["peers", "explain", case_id]) == 0
    text = capsys.readouterr().out
    assert f"{interested}: excluded (declared_interest) {WORDS_ERASED}" in text
    assert (f"lead member: {lead_member.peer_id} {lead_member.name}" in text
            and "personal data since erased from the pool" in text)
    assert "taken from the record" in text


def test_erase_refuses_bad_input_in_one_line(
        database: EventStore, capsys: pytest.CaptureFixture[str]) -> None:
    import_pool(database, demo_pool(AS_OF), "demo")
    for argv, said in [
        (["peers", "erase"], "give the PEER_ID"),
        (["peers", "erase", "P001", "--reason", "x"], "--pool N (one pool version) or --all"),
        (["peers", "erase", "P001", "--pool", "1", "--all-pools", "--reason", "x"], "--pool N"),
        (["peers", "erase", "P001", "--all-pools"], "give --reason TEXT"),
        (["peers", "erase", "P001", "--all-pools", "--reason", "a\x1b[32mb"],
         "--reason contains a control character"),
        (["peers", "erase", "P001", "--pool", "7", "--reason", "x"], "no peer pool version 7"),
        (["peers", "erase", "nobody", "--all-pools", "--reason", "x"],
         "no personal data of peer nobody is held in any pool version"),
    ]:
        assert run_cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    assert run_cli(["peers", "erase", "P001", "--pool", "1", "--reason", "request", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["peer_id"], done["pool_versions"], done["reason"]) == ("P001", [1], "request")
    listed = cli_json_list(capsys)
    [erased] = [p for p in listed if p["peer_id"] == "P001"]
    assert (erased["erased"], erased["name"], erased["political_group"],
            erased["declared_interests"]) == (True, None, None, None)


def cli_json_list(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert run_cli(["peers", "list", "--json"]) == 0
    peers: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["peers"]
    return peers
