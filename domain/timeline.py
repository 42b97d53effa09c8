"""A case as it stood at a moment, and what changed between two moments.

Pure: the same fold the workflow uses (`domain.state.apply`), over the events recorded up to
the moment. "Recorded up to the moment" means the longest run of the history, in version
order, whose events all have `occurred_at` at or before the moment. The store writes workflow
time, which only moves forward within a case, so this is every event with `occurred_at <=
moment`; should a later version ever carry an earlier time, the timeline stops at the first
event after the moment rather than fold a history with a gap in it.

Moments are timezone-aware. `parse_moment` reads what a person types on a command line: a bare
date means the end of that day in UTC (the case as it stood when the day was over).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.recorded import Recorded
from domain.state import CaseState, apply


def _need_zone(moment: datetime, name: str = "moment") -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} must carry a time zone (e.g. UTC)")


def events_as_of(history: Sequence[Recorded], moment: datetime) -> list[Recorded]:
    """The prefix of `history` (its events in version order) recorded at or before `moment`."""
    _need_zone(moment)
    prefix: list[Recorded] = []
    for recorded in history:
        if recorded.occurred_at > moment:
            break
        prefix.append(recorded)
    return prefix


def as_of(history: Sequence[Recorded], moment: datetime) -> CaseState:
    """The case as it stood at `moment`: the fold of the events recorded up to then.

    Before the case's first event this is the empty state (version 0, no stage). `history`
    is the whole case (or at least everything up to the moment), in version order; the case
    id is taken from its events, so an empty history raises ValueError.
    """
    if not history:
        raise ValueError("a case with no events has no state at any moment")
    state = CaseState(case_id=history[0].case_id)
    for recorded in events_as_of(history, moment):
        state = apply(state, recorded)
    return state


def end_of_day(day: date) -> datetime:
    """The last instant of `day` in UTC: `as_of(history, end_of_day(d))` is the case that night."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC) - timedelta(
        microseconds=1)


def parse_moment(text: str) -> datetime:
    """A moment from the command line.

    `2026-03-02` is the end of that day in UTC; `2026-03-02T09:30` or `2026-03-02 09:30:00` is
    that time in UTC; `2026-03-02T09:30:00+01:00` or `…Z` is that instant. ValueError otherwise.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            return end_of_day(date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or a time "
                         "(YYYY-MM-DDTHH:MM[:SS][+HH:MM|Z])") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class FieldChange(BaseModel):
    """One field of the case's state, before and after; values as JSON (dates as ISO text)."""

    model_config = ConfigDict(frozen=True)

    field: str
    old: Any
    new: Any


def _event_json(recorded: Recorded) -> dict[str, Any]:
    return {"version": recorded.version, "event_id": recorded.event_id,
            "type": recorded.event.type_name(), "occurred_at": recorded.occurred_at.isoformat(),
            "actor": recorded.actor, "payload": recorded.event.payload()}


class CaseDiff(BaseModel):
    """What happened to a case between two moments, and how its state changed."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    from_moment: datetime
    to_moment: datetime
    before: CaseState
    """The case as it stood at `from_moment`."""
    after: CaseState
    """The case as it stood at `to_moment`."""
    events: tuple[Recorded, ...]
    """The events recorded after `from_moment` up to and including `to_moment`, in order."""
    changes: tuple[FieldChange, ...]
    """Every field of the state whose value differs, in the state's field order. `version` and
    `last_event_at` differ whenever any event lies between the moments."""

    @property
    def unchanged(self) -> bool:
        return not self.events

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (events with their payloads, states as JSON objects)."""
        return {"case_id": self.case_id, "from": self.from_moment.isoformat(),
                "to": self.to_moment.isoformat(),
                "before": self.before.model_dump(mode="json"),
                "after": self.after.model_dump(mode="json"),
                "events": [_event_json(r) for r in self.events],
                "changes": [c.model_dump(mode="json") for c in self.changes]}


def changed_fields(before: CaseState, after: CaseState) -> tuple[FieldChange, ...]:
    """The fields of two states that differ, as JSON values, in the state's field order."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return tuple(FieldChange(field=name, old=old[name], new=new[name])
                 for name in CaseState.model_fields if old[name] != new[name])


def diff(history: Sequence[Recorded], from_moment: datetime, to_moment: datetime) -> CaseDiff:
    """The case at `from_moment`, at `to_moment`, the events between and the fields changed.

    `from_moment` must not be after `to_moment` (ValueError); equal moments give no change.
    """
    _need_zone(from_moment, "from_moment")
    _need_zone(to_moment, "to_moment")
    if from_moment > to_moment:
        raise ValueError(f"from {from_moment.isoformat()} is after to {to_moment.isoformat()}")
    before = as_of(history, from_moment)
    after = as_of(history, to_moment)
    between = tuple(r for r in history if before.version < r.version <= after.version)
    return CaseDiff(case_id=before.case_id, from_moment=from_moment, to_moment=to_moment,
                    before=before, after=after, events=between,
                    changes=changed_fields(before, after))
