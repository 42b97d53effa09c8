"""Recording checkpoints into their stream, and verifying the store against them: against one
checkpoint, along the chain of checkpoints, and against a published (signed) checkpoint.

What each check adds to the hash chain of the events (eventstore/verify.py):

- against one checkpoint: every head it saw still lies on its case's chain now, so a
  truncated tail or a whole case deleted shows;
- along the chain: each checkpoint names its predecessor's statement hash and must extend
  it, so a rewrite followed by a fresh checkpoint shows as a checkpoint that no longer
  extends the one before it;
- against a published checkpoint: its heads must still lie on the chains now and the store's
  checkpoint stream must still hold it, so even a rewrite of the checkpoint rows shows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.checkpoints import (
    CHECKPOINT_STREAM,
    CaseHead,
    CheckpointRecorded,
    checkpoint,
    heads_of,
    not_extending,
    statement,
    statement_hash,
)
from domain.checkpoints import merkle_root as compute_root
from domain.upcasting import parse_event
from eventstore.records import NewEvent, OutboxMessage, StoredEvent
from eventstore.schema import events
from eventstore.store import EventStore, _stored
from eventstore.verify import Problem, ProblemKind, Verdict, verify, verify_all

_LOOKUP_BATCH = 400
"""Heads looked up per query (two parameters each; well under SQLite's limit)."""


class CheckpointRefused(RuntimeError):
    """The store no longer extends the newest checkpoint: a new one would vouch for a
    rewritten record, so none is recorded."""


def verify_py_sha256() -> str:
    """Lowercase hex SHA-256 of the bundle's verify.py, as every checkpoint publishes it."""
    from eventstore.export import VERIFIER  # export may import the checkpoint code in turn

    return hashlib.sha256(VERIFIER.encode("utf-8")).hexdigest()


def current_heads(store: EventStore) -> tuple[list[CaseHead], int]:
    """Every case's newest (version, hash), and the highest position among them."""
    newest = (sa.select(events.c.case_id, sa.func.max(events.c.version).label("version"))
              .where(events.c.case_id != CHECKPOINT_STREAM).group_by(events.c.case_id)
              .subquery())
    query = (sa.select(events.c.case_id, events.c.version, events.c.hash, events.c.position)
             .join(newest, sa.and_(events.c.case_id == newest.c.case_id,
                                   events.c.version == newest.c.version))
             .order_by(events.c.case_id))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    heads = [CaseHead(case_id=r.case_id, version=r.version, hash=r.hash) for r in rows]
    return heads, max((r.position for r in rows), default=0)


def _checkpoint_event(stored: StoredEvent) -> CheckpointRecorded:
    event = parse_event(stored.type, stored.schema_version, stored.payload)
    if not isinstance(event, CheckpointRecorded):
        raise ValueError(f"a {stored.type} is not a checkpoint")
    return event


def statement_of(stored: StoredEvent) -> dict[str, Any]:
    """The statement (signed, published, hashed into the next checkpoint) of a stored one."""
    return statement(stored.version, stored.occurred_at, _checkpoint_event(stored))


def record_checkpoint(store: EventStore, *, event_id: str, at: datetime, actor: str,
                      publish_to: str | None = None) -> StoredEvent:
    """Append a checkpoint of every case's head, chained to the newest one; idempotent for
    the same `event_id`.

    CheckpointRefused, and nothing recorded, if the store no longer extends the newest
    checkpoint: a head it saw is gone or is not on its case's chain now. `publish_to` names
    who is told the root (an outbox notification in the same transaction).
    """
    already = _by_event_id(store, event_id)
    if already is not None and already.case_id == CHECKPOINT_STREAM:
        return already
    newest = load_checkpoint(store)
    previous: str | None = None
    if newest is not None:
        try:
            older = _checkpoint_event(newest)
        except ValueError:
            raise CheckpointRefused(
                f"checkpoint {newest.version} cannot be read as a checkpoint; nothing "
                "recorded; run `cases verify --against-checkpoint`") from None
        claims = _Claims()
        for head in older.heads:
            claims.add(head, f"checkpoint {newest.version}")
        found = claims.check(store)
        if found.problems:
            raise CheckpointRefused(
                f"the store no longer extends checkpoint {newest.version} ({found.problems[0]}); "
                "nothing recorded; run `cases verify --against-checkpoint`")
        previous = statement_hash(statement(newest.version, newest.occurred_at, older))
    heads, last_position = current_heads(store)
    event = checkpoint(heads, last_position, previous=previous,
                       verify_py_sha256=verify_py_sha256())
    version = 0 if newest is None else newest.version
    new = NewEvent.of(event, event_id=event_id, occurred_at=at, actor=actor)
    notices = [] if publish_to is None else [OutboxMessage(
        event_id=event_id, recipient=publish_to,
        subject=f"checkpoint {version + 1}: {len(heads)} cases, root {event.merkle_root}",
        body=f"Merkle root {event.merkle_root} over {len(heads)} case heads up to position "
             f"{last_position}, recorded {at.isoformat()}.")]
    [stored] = store.append(CHECKPOINT_STREAM, version, [new], notices)
    return stored


def _by_event_id(store: EventStore, event_id: str) -> StoredEvent | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(events).where(events.c.event_id == event_id)).first()
    return None if row is None else _stored(row)


def load_checkpoint(store: EventStore, version: int | None = None) -> StoredEvent | None:
    """A checkpoint by its version in the stream; the newest when `version` is None."""
    query = sa.select(events).where(events.c.case_id == CHECKPOINT_STREAM)
    query = (query.where(events.c.version == version) if version is not None
             else query.order_by(events.c.version.desc()).limit(1))
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _stored(row)


def _checkpoints(store: EventStore) -> Iterator[StoredEvent]:
    """The checkpoint stream in version order, fetched a few at a time (each holds every
    case's head)."""
    query = (sa.select(events).where(events.c.case_id == CHECKPOINT_STREAM)
             .order_by(events.c.version))
    with store.engine.connect().execution_options(stream_results=True, yield_per=50) as conn:
        for row in conn.execute(query):
            yield _stored(row)


# --- heads against the events as they are now -----------------------------------------------

def _hashes_at(store: EventStore, wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The hash of the event at each (case, version) asked for that exists now: one indexed
    query per few hundred heads."""
    found: dict[tuple[str, int], str] = {}
    pairs = list(wanted)
    mark = "?" if store.engine.dialect.name == "sqlite" else "%s"
    with store.engine.connect() as conn:
        for start in range(0, len(pairs), _LOOKUP_BATCH):
            batch = pairs[start:start + _LOOKUP_BATCH]
            values = ", ".join([f"({mark}, {mark})"] * len(batch))
            sql = (f"WITH wanted(case_id, version) AS (VALUES {values}) "
                   "SELECT e.case_id, e.version, e.hash FROM wanted JOIN events e "
                   "ON e.case_id = wanted.case_id AND e.version = wanted.version")
            params = tuple(value for pair in batch for value in pair)
            for case_id, version, hash_ in conn.exec_driver_sql(sql, params):
                found[(case_id, version)] = hash_
    return found


def _newest_versions(store: EventStore, case_ids: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(case_ids))
    newest: dict[str, int] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _LOOKUP_BATCH):
            query = (sa.select(events.c.case_id, sa.func.max(events.c.version))
                     .where(events.c.case_id.in_(wanted[start:start + _LOOKUP_BATCH]))
                     .group_by(events.c.case_id))
            newest.update({case_id: version for case_id, version in conn.execute(query)})
    return newest


@dataclass
class _Found:
    problems: list[Problem]
    """The first head of each case that no longer lies on its chain, by case."""
    failed: set[tuple[str, int, str]]
    """Every (case, version, hash) claimed that is not so now."""


@dataclass
class _Claims:
    """Heads that checkpoints say a case passed through, each with who saw it first."""

    seen: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)

    def add(self, head: CaseHead, seen_by: str) -> None:
        self.seen.setdefault((head.case_id, head.version), {}).setdefault(head.hash, seen_by)

    def check(self, store: EventStore) -> _Found:
        now = _hashes_at(store, self.seen)
        failed = {(case_id, version, hash_)
                  for (case_id, version), hashes in self.seen.items()
                  for hash_ in hashes if now.get((case_id, version)) != hash_}
        newest = _newest_versions(store, {case_id for case_id, version, _ in failed
                                          if (case_id, version) not in now})
        first: dict[str, Problem] = {}
        for case_id, version, hash_ in sorted(failed):
            if case_id in first:
                continue
            seen_by = self.seen[(case_id, version)][hash_]
            ends = newest.get(case_id, 0)
            if (case_id, version) in now:
                first[case_id] = Problem(case_id, version, ProblemKind.ALTERED, hash_,
                                         now[(case_id, version)],
                                         f"version {version} is not the event {seen_by} saw")
            elif ends == 0:
                first[case_id] = Problem(case_id, version, ProblemKind.MISSING, hash_, None,
                                         f"the whole case is gone; {seen_by} saw it at "
                                         f"version {version}")
            else:
                first[case_id] = Problem(case_id, ends + 1, ProblemKind.MISSING, hash_, None,
                                         f"truncated: {seen_by} saw version {version}, the "
                                         f"store now ends at version {ends}")
        return _Found([first[case_id] for case_id in sorted(first)], failed)


def verify_against(store: EventStore, stored: StoredEvent) -> list[Problem]:
    """What changed since the checkpoint that a chain alone cannot see.

    The checkpoint itself must be intact (its stream verifies and its root recomputes);
    then every case it saw must still reach its recorded head with the same hash.
    """
    problems: list[Problem] = list(verify(store, CHECKPOINT_STREAM).problems)
    try:
        event = _checkpoint_event(stored)
    except ValueError:
        return [*problems, _unreadable(stored.version)]
    if compute_root(event.heads) != event.merkle_root:
        problems.append(Problem(CHECKPOINT_STREAM, stored.version, ProblemKind.ALTERED, None,
                                None, "the checkpoint's Merkle root does not match its heads"))
    claims = _Claims()
    for head in event.heads:
        claims.add(head, f"checkpoint {stored.version}")
    return problems + claims.check(store).problems


def _unreadable(number: int) -> Problem:
    return Problem(CHECKPOINT_STREAM, number, ProblemKind.ALTERED, None, None,
                   f"checkpoint {number} cannot be read as a checkpoint")


@dataclass(frozen=True)
class _Step:
    """Case `case_id` moved on from `older` (seen by checkpoint `before`) to `newer` (seen by
    checkpoint `number`): both must lie on one chain."""

    number: int
    before: int
    case_id: str
    older: CaseHead
    newer: CaseHead


def verify_chain(store: EventStore) -> list[Problem]:
    """Each stored checkpoint against its predecessor: it names the predecessor's statement
    hash, it extends it, and every head any checkpoint saw still lies on its case's chain.
    (The stream's own rows are hashed and chained like any case: verify_all checks those.)"""
    return _audit(store, None)


def verify_anchor(store: EventStore, published: Mapping[str, Any]) -> list[Problem]:
    """Whether the store still extends a published checkpoint's statement (its signature
    checked by the caller, with the auditor's key): every head in it lies on its case's chain
    now, no case gone; the store's checkpoint stream still holds that very statement, and
    its chain from there on holds (verify_chain). ValueError if the statement's heads are not
    heads."""
    return _audit(store, published)


def verify_anchored(store: EventStore, published: Mapping[str, Any],
                    case_id: str | None = None, *, workers: int = 1) -> Verdict:
    """Every hash and link (of one case, or all: verify_all with `workers`), and the store
    against a published checkpoint and along its checkpoint chain: what `cases verify
    --anchor` reports once the file's signature holds."""
    verdict = verify(store, case_id) if case_id else verify_all(store, workers=workers)
    found = verify_anchor(store, published)
    if case_id:
        found = list(verify(store, CHECKPOINT_STREAM).problems) + [
            p for p in found if p.case_id in (case_id, CHECKPOINT_STREAM)]
    verdict.problems += [p for p in found if p not in verdict.problems]
    return verdict


def _audit(store: EventStore, published: Mapping[str, Any] | None) -> list[Problem]:
    problems: list[Problem] = []
    claims = _Claims()
    steps: list[_Step] = []
    anchor_number = anchor_hash = None
    stored_anchor_hash: str | None = None
    stream_ends = 0
    if published is not None:
        anchor_number = int(published["number"])
        anchor_hash = statement_hash(published)
        anchor_heads = heads_of(published)
        label = f"published checkpoint {anchor_number}"
        if compute_root(anchor_heads) != published["merkle_root"]:
            problems.append(Problem(CHECKPOINT_STREAM, anchor_number, ProblemKind.ALTERED, None,
                                    None, f"{label}'s Merkle root does not match its heads"))
        for head in anchor_heads:
            claims.add(head, label)
    before: tuple[int, str, list[CaseHead]] | None = None
    chained = False
    for stored in _checkpoints(store):
        number = stream_ends = stored.version
        try:
            event = _checkpoint_event(stored)
        except ValueError:
            problems.append(_unreadable(number))
            before = None
            continue
        if compute_root(event.heads) != event.merkle_root:
            problems.append(Problem(CHECKPOINT_STREAM, number, ProblemKind.ALTERED, None, None,
                                    f"checkpoint {number}'s Merkle root does not match its "
                                    "heads"))
        hashed = statement_hash(statement(number, stored.occurred_at, event))
        if number == anchor_number:
            stored_anchor_hash = hashed
        chained = chained or stored.schema_version >= 2
        if before is not None:
            problems += _link(number, event, stored.schema_version, before, chained)
            steps += _steps(number, before, event.heads)
        elif number == 1 and event.previous is not None:
            problems.append(Problem(CHECKPOINT_STREAM, 1, ProblemKind.BROKEN_LINK, None, None,
                                    "checkpoint 1 names a predecessor; the first has none"))
        for head in event.heads:
            claims.add(head, f"checkpoint {number}")
        before = (number, hashed, event.heads)
    if published is not None:
        problems += _anchor_in_stream(anchor_number or 0, anchor_hash or "", stored_anchor_hash,
                                      stream_ends)
    found = claims.check(store)
    problems += _not_extending_now(steps, found.failed)
    return problems + found.problems


def _link(number: int, event: CheckpointRecorded, schema_version: int,
          before: tuple[int, str, list[CaseHead]], chained: bool) -> list[Problem]:
    """The checkpoint names its predecessor and extends it, as far as the two can tell."""
    problems: list[Problem] = []
    previous_number, previous_hash, previous_heads = before
    unchained_old_shape = event.previous is None and schema_version == 1 and not chained
    if not unchained_old_shape and event.previous != previous_hash:
        problems.append(Problem(
            CHECKPOINT_STREAM, number, ProblemKind.BROKEN_LINK, previous_hash, event.previous,
            f"checkpoint {number} does not link to checkpoint {previous_number}: it names "
            f"{event.previous} as its predecessor, whose statement hashes to {previous_hash}"))
    reasons = not_extending(previous_heads, event.heads)
    if reasons:
        problems.append(Problem(CHECKPOINT_STREAM, number, ProblemKind.BROKEN_LINK, None, None,
                                f"checkpoint {number} does not extend checkpoint "
                                f"{previous_number}: {reasons[0]}"))
    return problems


def _steps(number: int, before: tuple[int, str, list[CaseHead]],
           heads: list[CaseHead]) -> list[_Step]:
    previous_number, _, previous_heads = before
    now = {head.case_id: head for head in heads}
    return [_Step(number, previous_number, then.case_id, then, now[then.case_id])
            for then in previous_heads
            if then.case_id in now and now[then.case_id].version > then.version]


def _not_extending_now(steps: list[_Step], failed: set[tuple[str, int, str]]) -> list[Problem]:
    """A checkpoint whose head of a case lies on the chain now while its predecessor's older
    head of that case does not: it vouches for a chain that is not the one its predecessor
    saw. One problem per checkpoint, naming the first such case."""
    named: dict[int, Problem] = {}
    for step in steps:
        older, newer = step.older, step.newer
        if (step.number not in named
                and (older.case_id, older.version, older.hash) in failed
                and (newer.case_id, newer.version, newer.hash) not in failed):
            named[step.number] = Problem(
                CHECKPOINT_STREAM, step.number, ProblemKind.BROKEN_LINK, None, None,
                f"checkpoint {step.number} does not extend checkpoint {step.before}: it "
                f"vouches for case {step.case_id} at version {newer.version} on a chain whose "
                f"version {older.version} is not the event checkpoint {step.before} saw")
    return [named[number] for number in sorted(named)]


def _anchor_in_stream(number: int, published_hash: str, stored_hash: str | None,
                      stream_ends: int) -> list[Problem]:
    if stored_hash is None:
        where = (f"its checkpoint stream ends at checkpoint {stream_ends}" if stream_ends
                 else "it holds no checkpoint at all")
        return [Problem(CHECKPOINT_STREAM, number, ProblemKind.MISSING, published_hash, None,
                        f"published checkpoint {number} is gone from the store: {where}")]
    if stored_hash != published_hash:
        return [Problem(CHECKPOINT_STREAM, number, ProblemKind.ALTERED, published_hash,
                        stored_hash, f"checkpoint {number} in the store is not the one "
                        "published: the checkpoint rows were rewritten")]
    return []
