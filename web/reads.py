"""What the case pages read that the application layer has no function for yet: read-only
queries of the store and its read models, kept beside the pages until they are wanted
elsewhere (then they belong in eventstore/projections.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.recorded import Recorded
from domain.state import AwaitingApproval, CaseState
from domain.vocabulary import Stage
from eventstore import EventStore
from eventstore.schema import case_summaries, events


def cases_requested_by(store: EventStore, actor: str) -> set[str]:
    """The cases `actor` asked for: whose request (version 1) they recorded. The dashboard
    lists these first, as the officer's own."""
    query = sa.select(events.c.case_id).where(events.c.version == 1,
                                              events.c.type == "CaseRequested",
                                              events.c.actor == actor)
    with store.engine.connect() as conn:
        return {row.case_id for row in conn.execute(query)}


@dataclass(frozen=True)
class Waiting:
    """A sensitive request on an open case, waiting for a second person."""

    case_id: str
    council: str
    kind: str
    stage: str
    request: AwaitingApproval


def awaiting_approval(store: EventStore) -> list[Waiting]:
    """Every sensitive request waiting for approval on an open case, oldest first, from the
    folded states the read models keep (call after `list_cases`, which catches them up)."""
    open_stages = [s.value for s in Stage if s.is_open]
    query = sa.select(case_summaries.c.state).where(
        case_summaries.c.stage.in_(open_stages),
        # a cheap first sieve: a state with a request waiting names a request_id
        sa.cast(case_summaries.c.state, sa.Text).like("%request_id%"))
    found: list[Waiting] = []
    with store.engine.connect() as conn:
        for (data,) in conn.execute(query):
            state = CaseState.model_validate(data)
            found += [Waiting(case_id=state.case_id, council=state.council or "",
                              kind=state.kind.value if state.kind else "",
                              stage=state.stage.value if state.stage else "", request=waiting)
                      for waiting in state.awaiting_approval]
    return sorted(found, key=lambda w: (w.request.requested_at, w.case_id))


# --- a case's timeline in words -------------------------------------------------------------

_NOT_SHOWN = frozenset({"rationale", "reasons", "selection", "selection_rules", "imported",
                        "four_eyes", "business_dates", "deadline_policy"})
"""Kept in the event for the auditor, not worth a line on the page: the engine's inputs and
codes (shown under the team, in words), and the case's terms."""


_WORDS = frozenset({"kind", "action", "deadline", "visit_mode", "mode", "selected_by",
                    "factual_accuracy_check"})
"""Fields whose values are the domain's words (`on_site`): shown with spaces."""


@dataclass(frozen=True)
class TimelineLine:
    version: int
    occurred_at: datetime
    actor: str
    what: str
    details: str


def _title(type_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", type_name).lower().capitalize()


def _value(key: str, value: Any) -> str:
    if key == "team" and isinstance(value, list):
        return ", ".join(f"{seat.get('name')} ({str(seat.get('role', '')).replace('_', ' ')})"
                         for seat in value if isinstance(seat, dict))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value).replace("_", " ") if key in _WORDS else str(value)


def _details(payload: dict[str, Any], skip: frozenset[str] = _NOT_SHOWN) -> str:
    said = []
    for key, value in payload.items():
        if key in skip or value in (None, [], {}, False, ""):
            continue
        if isinstance(value, dict):  # an approval request's command: its own words
            inner = _details(value, skip | {"action"})
            if inner:
                said.append(inner)
            continue
        said.append(f"{key.replace('_', ' ')}: {_value(key, value)}")
    return "; ".join(said)


def timeline(history: list[Recorded]) -> list[TimelineLine]:
    """One line per event, in version order: when it was recorded, by whom, what."""
    return [TimelineLine(version=r.version, occurred_at=r.occurred_at, actor=r.actor,
                         what=_title(r.event.type_name()),
                         details=_details(r.event.model_dump(mode="json")))
            for r in history]
