"""Explaining a case's peer selections: every engine selection re-run from its event.

An event records each pool peer as an id and a reason code; the words are derived here from
the pool version the event names, so they can be shown without being kept forever. A peer whose
personal data has been erased since is shown by id and code, their words marked erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import events as ev
from domain.peer_selection import CandidateDecision, PeerPool, reproduce
from domain.state import fold
from domain.upcasting import parse_event
from eventstore import EventStore, StoredEvent
from eventstore.councils import known_register
from eventstore.peers import PoolAltered, UnknownPool, load_pool, pool_version


class SelectionUnexplained(ValueError):
    """The case, or its council, is not there to explain."""


def explain_selections(store: EventStore, case_id: str,
                       stored: Sequence[StoredEvent] | None = None) -> list[dict[str, Any]]:
    """Re-run every team proposal of a case (and every team that could not be filled) from its
    event, on the pool version it names: one result each, saying whether it yields the same
    outcome and every candidate's reason in words. Hand-picked teams are named as such: there
    is no selection to re-run. `stored`: the case's events, when the caller has read them."""
    if stored is None:
        stored = store.read_case(case_id)
    if not stored:
        raise SelectionUnexplained(f"case {case_id} is not in the store")
    state = fold(case_id, [e.to_recorded() for e in stored])
    councils, register_now = known_register(store)
    subject = councils.get(state.council or "")
    if subject is None or state.kind is None:
        raise SelectionUnexplained(
            f"case {case_id}: council {state.council} is not in the register; import it with "
            "`cases councils import`")
    pools: dict[int, PeerPool] = {}
    results: list[dict[str, Any]] = []
    for event in stored:
        if event.type not in ("PeerTeamProposed", "PeerTeamCannotBeFilled"):
            continue
        recorded = parse_event(event.type, event.schema_version, event.payload)
        assert isinstance(recorded, ev.PeerTeamProposed | ev.PeerTeamCannotBeFilled)
        result: dict[str, Any] = {"version": event.version, "actor": event.actor,
                                  "type": event.type}
        results.append(result)
        if isinstance(recorded, ev.PeerTeamProposed) and recorded.selection is None:
            result |= {"selected_by": "officer", "reproduced": None,
                       "team": [p.model_dump(mode="json") for p in recorded.team]}
            continue
        record = recorded.selection
        assert record is not None
        result |= {"selected_by": "engine", "seed": record.seed,
                   "pool_version": record.pool_version, "pool_digest": record.pool_digest,
                   "excluded": record.excluded,
                   "register_changed": record.councils_digest not in (None, register_now)}
        if isinstance(recorded, ev.PeerTeamCannotBeFilled):
            result["requirement"] = recorded.requirement
        else:
            result["team"] = [p.model_dump(mode="json") for p in recorded.team]
        try:
            named = pool_version(store, record.pool_version)
            if named.digest != record.pool_digest:
                raise SelectionUnexplained(
                    f"the event names pool version {record.pool_version} with digest "
                    f"{record.pool_digest}, but that version's digest is {named.digest}")
            pool = pools.get(record.pool_version) or PeerPool(
                load_pool(store, record.pool_version))
        except (UnknownPool, PoolAltered, SelectionUnexplained) as missing:
            result |= {"reproduced": False, "differences": [str(missing)], "candidates": []}
            continue
        pools[record.pool_version] = pool
        again = reproduce(recorded, subject, councils, pool, state.kind)
        erased = {pool.peers[i].peer_id for i in pool.erased}
        team = recorded.team if isinstance(recorded, ev.PeerTeamProposed) else []
        result |= {"reproduced": again.same, "differences": again.differences,
                   "from_record": list(again.from_record),
                   "erased_team": [p.peer_id for p in team if p.peer_id in erased],
                   "candidates": [_candidate(d, d.peer_id in erased)
                                  for d in again.considered]}
    return results


def _candidate(decision: CandidateDecision, erased: bool) -> dict[str, Any]:
    return {"peer_id": decision.peer_id, "admitted": decision.admitted,
            "reason_code": decision.rule.value, "reason": decision.reason,
            "role": decision.role, "erased": erased}
