"""Recording checkpoints into their stream, and verifying the store against one."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from domain.checkpoints import CHECKPOINT_STREAM, CaseHead, CheckpointRecorded, checkpoint
from domain.checkpoints import merkle_root as compute_root
from eventstore.records import NewEvent, OutboxMessage, StoredEvent
from eventstore.schema import events
from eventstore.store import EventStore
from eventstore.verify import Problem, ProblemKind, verify


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


def record_checkpoint(store: EventStore, *, event_id: str, at: datetime, actor: str,
                      publish_to: str | None = None) -> StoredEvent:
    """Append a checkpoint of every case's head; idempotent for the same `event_id`.

    `publish_to` names who is told the root (an outbox notification in the same
    transaction), so the root also lives outside this table.
    """
    heads, last_position = current_heads(store)
    event = checkpoint(heads, last_position)
    version, _ = store.head(CHECKPOINT_STREAM)
    already = [e for e in store.read_case(CHECKPOINT_STREAM) if e.event_id == event_id]
    if already:
        return already[0]
    new = NewEvent.of(event, event_id=event_id, occurred_at=at, actor=actor)
    notices = [] if publish_to is None else [OutboxMessage(
        event_id=event_id, recipient=publish_to,
        subject=f"checkpoint {version + 1}: {len(heads)} cases, root {event.merkle_root}",
        body=f"Merkle root {event.merkle_root} over {len(heads)} case heads up to position "
             f"{last_position}, recorded {at.isoformat()}.")]
    [stored] = store.append(CHECKPOINT_STREAM, version, [new], notices)
    return stored


def load_checkpoint(store: EventStore, version: int | None = None) -> StoredEvent | None:
    """A checkpoint by its version in the stream; the newest when `version` is None."""
    stream = store.read_case(CHECKPOINT_STREAM, up_to_version=version)
    if not stream or (version is not None and stream[-1].version != version):
        return None
    return stream[-1]


def verify_against(store: EventStore, stored: StoredEvent) -> list[Problem]:
    """What changed since the checkpoint that a chain alone cannot see.

    The checkpoint itself must be intact (its stream verifies and its root recomputes);
    then every case it saw must still reach its recorded head with the same hash.
    """
    problems: list[Problem] = []
    stream = verify(store, CHECKPOINT_STREAM)
    problems += stream.problems
    event = stored.to_recorded().event
    assert isinstance(event, CheckpointRecorded)
    if compute_root(event.heads) != event.merkle_root:
        problems.append(Problem(CHECKPOINT_STREAM, stored.version, ProblemKind.ALTERED, None,
                                None, "the checkpoint's Merkle root does not match its heads"))
    for head in event.heads:
        kept = store.read_case(head.case_id, up_to_version=head.version)
        if not kept:
            problems.append(Problem(head.case_id, head.version, ProblemKind.MISSING, head.hash,
                                    None, f"the whole case is gone; checkpoint "
                                    f"{stored.version} saw it at version {head.version}"))
        elif kept[-1].version != head.version:
            problems.append(Problem(
                head.case_id, kept[-1].version + 1, ProblemKind.MISSING, head.hash, None,
                f"truncated: checkpoint {stored.version} saw version {head.version}, "
                f"the store now ends at version {kept[-1].version}"))
        elif kept[-1].hash != head.hash:
            problems.append(Problem(
                head.case_id, head.version, ProblemKind.ALTERED, head.hash, kept[-1].hash,
                f"version {head.version} is not the event checkpoint {stored.version} saw"))
    return problems
