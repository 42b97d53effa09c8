"""What the case pages read that the application layer has no function for yet: read-only
queries of the store and its read models, kept beside the pages until they are wanted
elsewhere (then they belong in eventstore/projections.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from domain.recorded import Recorded
from domain.state import AwaitingApproval, CaseState
from eventstore import EventStore
from eventstore.projections import is_open_case
from eventstore.schema import case_summaries


@dataclass(frozen=True)
class CaseRow:
    """One open case as a dashboard list shows it."""

    case: str
    council: str
    kind: str
    stage: str
    next_deadline: datetime | None
    escalation_level: int


@dataclass(frozen=True)
class Waiting:
    """A sensitive request on an open case, waiting for a second person."""

    case_id: str
    council: str
    kind: str
    stage: str
    request: AwaitingApproval


@dataclass(frozen=True)
class OpenCases:
    """What every officer's dashboard shows alike, as the read models stood at one
    position: the first `shown` rows of each list, soonest deadline first, and how many each
    list has in all."""

    rows: list[CaseRow]
    """Every open case."""
    due: list[CaseRow]
    """Open cases with a deadline before the `soon` they were read for."""
    escalated: dict[int, list[CaseRow]]
    """Open cases by the highest level they have escalated to."""
    totals: dict[str, Any]
    """`rows`, `due`: how many in all; `escalated`: how many at each level."""
    waiting: list[Waiting]
    """Every sensitive request waiting for approval on an open case, oldest first."""


_ROW = (case_summaries.c.case_id, case_summaries.c.council, case_summaries.c.kind,
        case_summaries.c.stage, case_summaries.c.next_deadline_at,
        case_summaries.c.escalation_level)
_ORDER = (case_summaries.c.next_deadline_at.asc().nulls_last(), case_summaries.c.case_id)
"""Soonest deadline first, as `cases list` orders them; the index of the same columns
serves it, so a page of rows is read without sorting every open case."""


def _row(found: Any) -> CaseRow:
    at = found.next_deadline_at
    if isinstance(at, datetime) and at.tzinfo is None:  # SQLite keeps no zone: stored in UTC
        at = at.replace(tzinfo=UTC)
    return CaseRow(case=found.case_id, council=found.council, kind=found.kind,
                   stage=found.stage, next_deadline=at, escalation_level=found.escalation_level)


def open_cases(store: EventStore, soon: datetime, levels: Iterable[int],
               shown: int) -> OpenCases:
    """The dashboard's shared lists from the read models, a page of each read in SQL (call
    with the read models current: `application.cases.current_read_models`)."""
    levels = list(levels)
    soon_utc = soon.astimezone(UTC)
    if store.engine.dialect.name == "sqlite":  # stored without a zone, in UTC
        soon_utc = soon_utc.replace(tzinfo=None)

    def counted(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    counts = sa.select(sa.func.count(), counted(case_summaries.c.next_deadline_at <= soon_utc),
                       *(counted(case_summaries.c.escalation_level == level)
                         for level in levels)).where(is_open_case())
    page = sa.select(*_ROW).where(is_open_case()).order_by(*_ORDER).limit(shown)
    with store.engine.connect() as conn:
        total, due_total, *at_level = conn.execute(counts).one()
        rows = [_row(r) for r in conn.execute(page)]
        escalated = {level: [_row(r) for r in conn.execute(
            page.where(case_summaries.c.escalation_level == level))] if count else []
            for level, count in zip(levels, at_level, strict=True)}
        states = [data for (data,) in conn.execute(sa.select(case_summaries.c.state).where(
            is_open_case(), case_summaries.c.awaiting_approval > 0))]
    waiting: list[Waiting] = []
    for data in states:
        state = CaseState.model_validate(data)
        waiting += [Waiting(case_id=state.case_id, council=state.council or "",
                            kind=state.kind.value if state.kind else "",
                            stage=state.stage.value if state.stage else "", request=request)
                    for request in state.awaiting_approval]
    waiting.sort(key=lambda w: (w.request.requested_at, w.case_id))
    # The cases due soon are a prefix of every open case in deadline order.
    return OpenCases(rows=rows, due=rows[:min(int(due_total), shown)], escalated=escalated,
                     waiting=waiting,
                     totals={"rows": int(total), "due": int(due_total),
                             "escalated": {level: int(count)
                                           for level, count in zip(levels, at_level,
                                                                   strict=True)}})


def requested_by(store: EventStore, actor: str, shown: int) -> tuple[list[CaseRow], int]:
    """The first `shown` open cases `actor` asked for, soonest deadline first, and how many
    there are."""
    page = (sa.select(*_ROW, sa.func.count().over().label("total"))
            .where(is_open_case(), case_summaries.c.requested_by == actor)
            .order_by(*_ORDER).limit(shown))
    with store.engine.connect() as conn:
        found = conn.execute(page).all()
    return [_row(r) for r in found], int(found[0].total) if found else 0


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
