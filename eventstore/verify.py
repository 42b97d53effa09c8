"""Verification: recompute every hash and walk every chain; name the first bad event.

What it proves: every stored event still hashes to its `hash`, each case's versions run
1, 2, 3 … without a gap, each event's `prev_hash` is its predecessor's `hash`, and a case's
positions rise with its versions. What it cannot see alone: a truncated tail or a whole
case deleted; those need a head (version, hash) held outside the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby

import sqlalchemy as sa

from eventstore.chain import GENESIS_HASH, event_hash
from eventstore.records import StoredEvent
from eventstore.schema import events
from eventstore.store import EventStore, _stored


class ProblemKind(StrEnum):
    ALTERED = "altered"
    """The event's content no longer hashes to its stored hash."""
    MISSING = "missing"
    """A version is absent: the chain jumps over it."""
    BROKEN_LINK = "broken_link"
    """The event's prev_hash is not the hash of the event before it."""
    REORDERED = "reordered"
    """The case's positions do not rise with its versions."""


@dataclass(frozen=True)
class Problem:
    case_id: str
    version: int
    kind: ProblemKind
    stored_hash: str | None
    computed_hash: str | None
    detail: str

    def __str__(self) -> str:
        hashes = ""
        if self.stored_hash is not None or self.computed_hash is not None:
            hashes = f" (stored hash {self.stored_hash}, computed {self.computed_hash})"
        return f"case {self.case_id} version {self.version}: {self.kind}: {self.detail}{hashes}"


@dataclass
class Verdict:
    cases: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    """The first problem of each bad case, in case order."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def recompute(event: StoredEvent, prev_hash: str | None = None) -> str:
    return event_hash(case_id=event.case_id, version=event.version, event_id=event.event_id,
                      type=event.type, schema_version=event.schema_version,
                      occurred_at=event.occurred_at, actor=event.actor, payload=event.payload,
                      prev_hash=event.prev_hash if prev_hash is None else prev_hash)


def check_chain(case_events: Iterable[StoredEvent]) -> tuple[int, Problem | None]:
    """Walk one case's events in version order; (events seen, first problem or None)."""
    expected_version = 1
    prev_hash = GENESIS_HASH
    prev_position = 0
    seen = 0
    for event in case_events:
        seen += 1
        case_id = event.case_id
        computed = recompute(event)
        if event.version != expected_version:
            return seen, Problem(case_id, expected_version, ProblemKind.MISSING, None, None,
                                 f"version {expected_version} is missing; the next stored "
                                 f"is version {event.version}")
        if computed != event.hash:
            return seen, Problem(case_id, event.version, ProblemKind.ALTERED, event.hash,
                                 computed, "the event's content does not match its hash")
        if event.prev_hash != prev_hash:
            return seen, Problem(case_id, event.version, ProblemKind.BROKEN_LINK, event.hash,
                                 computed, f"prev_hash {event.prev_hash} is not the hash of "
                                 f"version {event.version - 1} ({prev_hash})")
        if event.position <= prev_position:
            return seen, Problem(case_id, event.version, ProblemKind.REORDERED, event.hash,
                                 computed, f"position {event.position} is not after the "
                                 f"previous version's position {prev_position}")
        expected_version += 1
        prev_hash = event.hash
        prev_position = event.position
    return seen, None


def verify(store: EventStore, case_id: str) -> Verdict:
    count, problem = check_chain(store.read_case(case_id))
    return Verdict(cases=1 if count else 0, events=count, problems=[problem] if problem else [])


def _all_in_case_order(store: EventStore, batch_size: int) -> Iterator[StoredEvent]:
    query = sa.select(events).order_by(events.c.case_id, events.c.version)
    with store.engine.connect().execution_options(stream_results=True,
                                                  yield_per=batch_size) as conn:
        for row in conn.execute(query):
            yield _stored(row)


def verify_all(store: EventStore, batch_size: int = 5000) -> Verdict:
    """Every case in the store, streamed; reports the first problem of each bad case."""
    verdict = Verdict()
    for _case_id, case_events in groupby(_all_in_case_order(store, batch_size),
                                         key=lambda e: e.case_id):
        count, problem = check_chain(case_events)
        verdict.cases += 1
        verdict.events += count
        if problem is not None:
            verdict.problems.append(problem)
            for _ in case_events:  # count the rest of a bad case all the same
                verdict.events += 1
    return verdict
