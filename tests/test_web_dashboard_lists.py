"""The officers' dashboard lists read a page of rows in SQL (issue 18): the first rows of each
list and the counts must be what every open case's summary says, on SQLite and PostgreSQL,
for the officer who asked for each case and the requests that wait for a second person."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain import events as ev
from domain.deadlines import LADDER
from domain.recorded import Recorded
from domain.state import fold
from eventstore import EventStore, NewEvent
from eventstore.projections import Projector, case_rows
from tests.test_domain_figures import history_of, plan_year
from web.reads import CaseRow, open_cases, requested_by

OFFICERS = ("officer:siân.jones", "officer:raj.patel", "adviser:ola.adeyemi")


def _stored(store: EventStore) -> list[list[Recorded]]:
    """A year of journeys, each asked for by one of three officers; every fifth open case
    with a withdrawal waiting for a second person."""
    rng = random.Random(11)
    histories = []
    for n, history in enumerate(history_of(plan) for plan in plan_year(7)):
        asker = OFFICERS[n % len(OFFICERS)]
        history = [r.model_copy(update={"actor": asker}) if r.version == 1 else r
                   for r in history]
        state = fold(history[0].case_id, history)
        if state.is_open and n % 5 == 0:
            last = history[-1]
            history.append(Recorded(
                case_id=last.case_id, version=last.version + 1,
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, last.event_id)),
                occurred_at=last.occurred_at + timedelta(minutes=rng.randint(1, 500)),
                actor=OFFICERS[(n + 1) % len(OFFICERS)],
                event=ev.ApprovalRequested(request_id=f"withdraw-{n}", action="withdraw",
                                           command={"reason": "Intervention instead"})))
        store.append(history[0].case_id, 0, [
            NewEvent.of(r.event, event_id=r.event_id, occurred_at=r.occurred_at, actor=r.actor)
            for r in history])
        histories.append(history)
    Projector(store).catch_up()
    return histories


def _as_row(summary: object) -> CaseRow:
    return CaseRow(case=summary.case_id, council=summary.council,  # type: ignore[attr-defined]
                   kind=summary.kind, stage=summary.stage,  # type: ignore[attr-defined]
                   next_deadline=summary.next_deadline_at,  # type: ignore[attr-defined]
                   escalation_level=summary.escalation_level)  # type: ignore[attr-defined]


@pytest.mark.parametrize("shown", [3, 30])
def test_each_list_is_the_first_rows_of_every_open_case_and_counts_them_all(
        any_store: EventStore, shown: int) -> None:
    histories = _stored(any_store)
    every = [_as_row(s) for s in case_rows(any_store.engine)]  # open, soonest deadline first
    assert len(every) > shown
    deadlines = sorted(r.next_deadline for r in every if r.next_deadline is not None)
    soon = deadlines[len(deadlines) // 2]  # half of them due by then

    found = open_cases(any_store, soon, LADDER, shown)

    assert found.rows == every[:shown] and found.totals["rows"] == len(every)
    due = [r for r in every if r.next_deadline is not None and r.next_deadline <= soon]
    assert found.due == due[:shown] and found.totals["due"] == len(due) > 0
    for level in LADDER:
        at_level = [r for r in every if r.escalation_level == level]
        assert found.escalated[level] == at_level[:shown]
        assert found.totals["escalated"][level] == len(at_level)
    assert any(found.totals["escalated"].values())

    asked = {h[0].case_id: h[0].actor for h in histories}
    for officer in OFFICERS:
        theirs = [r for r in every if asked[r.case] == officer]
        assert requested_by(any_store, officer, shown) == (theirs[:shown], len(theirs))
    assert requested_by(any_store, "officer:nobody", shown) == ([], 0)

    waiting = {(h[0].case_id, h[-1].actor) for h in histories
               if isinstance(h[-1].event, ev.ApprovalRequested)}
    assert waiting and {(w.case_id, w.request.requested_by) for w in found.waiting} == waiting
    assert [w.request.requested_at for w in found.waiting] == sorted(
        w.request.requested_at for w in found.waiting)


def test_a_deadline_is_due_up_to_the_moment_asked(sqlite_store: EventStore) -> None:
    _stored(sqlite_store)
    every = [_as_row(s) for s in case_rows(sqlite_store.engine)]
    first = next(r.next_deadline for r in every if r.next_deadline is not None)
    assert first is not None and first.tzinfo is not None
    assert open_cases(sqlite_store, first - timedelta(seconds=1), LADDER, 5).totals["due"] == 0
    assert open_cases(sqlite_store, first, LADDER, 5).totals["due"] >= 1
    assert open_cases(sqlite_store, datetime.max.replace(tzinfo=UTC) - timedelta(days=1),
                      LADDER, 5).totals["due"] == sum(1 for r in every if r.next_deadline)
