"""Explaining a case's peer selections: every engine proposal re-run from its event."""

from __future__ import annotations

from typing import Any

from domain import events as ev
from domain.councils import register_digest
from domain.peer_selection import propose_or_explain, reproduce
from domain.peers import Peer
from domain.state import fold
from domain.upcasting import parse_event
from eventstore import EventStore
from eventstore.councils import known_councils
from eventstore.peers import PoolAltered, UnknownPool, load_pool


class SelectionUnexplained(ValueError):
    """The case, or its council, is not there to explain."""


def explain_selections(store: EventStore, case_id: str) -> list[dict[str, Any]]:
    """Re-run every team proposal of a case from its event, on the pool version it names: one
    result a proposal, saying whether it yields the same team. Hand-picked teams are named as
    such: there is no selection to re-run."""
    stored = store.read_case(case_id)
    if not stored:
        raise SelectionUnexplained(f"case {case_id} is not in the store")
    state = fold(case_id, [e.to_recorded() for e in stored])
    councils = known_councils(store)
    subject = councils.get(state.council or "")
    if subject is None or state.kind is None:
        raise SelectionUnexplained(
            f"case {case_id}: council {state.council} is not in the register; import it with "
            "`cases councils import`")
    register_now = register_digest(councils)
    pools: dict[int, list[Peer]] = {}
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
        try:
            pool = pools.get(record.pool_version) or load_pool(store, record.pool_version)
        except (UnknownPool, PoolAltered) as missing:
            result |= {"reproduced": False, "differences": [str(missing)]}
            continue
        pools[record.pool_version] = pool
        if isinstance(recorded, ev.PeerTeamCannotBeFilled):
            rerun = propose_or_explain(record, subject, councils, pool, state.kind)
            same = (isinstance(rerun, ev.PeerTeamCannotBeFilled)
                    and rerun.requirement == recorded.requirement)
            result |= {"reproduced": same, "requirement": recorded.requirement,
                       "differences": [] if same else [
                           f"the re-run gives {_outcome(rerun)}, not "
                           f"{recorded.requirement} unfilled"]}
            continue
        again = reproduce(recorded, subject, councils, pool, state.kind)
        result |= {"reproduced": again.same, "differences": again.differences,
                   "team": [p.model_dump(mode="json") for p in recorded.team]}
    return results


def _outcome(event: ev.PeerTeamProposed | ev.PeerTeamCannotBeFilled) -> str:
    if isinstance(event, ev.PeerTeamCannotBeFilled):
        return f"{event.requirement} unfilled"
    return "a team of " + ", ".join(p.peer_id for p in event.team)
