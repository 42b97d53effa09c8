"""The relay's side of the store: claim outbox notices due for sending, record what became of
each, and list them (`cases outbox`, a case's notices).

A notice is claimed before it is sent and its outcome recorded as soon as the server has
answered, so of two relays only one sends it; a relay killed between the server's answer and
the record leaves the claim to lapse, and the notice is sent again with the same Message-ID
(which an inbox that honours it shows once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from eventstore.records import as_utc
from eventstore.schema import deliveries, outbox
from eventstore.store import EventStore

DeliveryStatus = Literal["pending", "sent", "undeliverable", "failed"]
FINISHED: tuple[DeliveryStatus, ...] = ("sent", "undeliverable", "failed")


@dataclass(frozen=True)
class OutboxNotice:
    """One outbox row: a notice to one recipient (by role), caused by one event."""

    id: int
    event_id: str
    case_id: str
    recipient: str
    subject: str
    body: str
    created_at: datetime
    notice: dict[str, Any] | None
    """The structured facts (None on rows from before migration 0007)."""


@dataclass(frozen=True)
class ClaimedNotice:
    notice: OutboxNotice
    attempts: int
    """Attempts made before this one."""


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: finished (`sent`, `undeliverable`, `failed`) or `pending`
    again, to be retried at `retry_at`."""

    status: DeliveryStatus
    message_id: str | None = None
    sent_to: Sequence[str] = ()
    answer: str | None = None
    problem: str | None = None
    contacts_version: int | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class NoticeDelivery:
    """An outbox notice with its delivery as it stands, for listings."""

    notice: OutboxNotice
    status: DeliveryStatus
    attempts: int
    sending: bool
    """Claimed by a relay right now."""
    next_attempt_at: datetime | None
    message_id: str | None
    sent_to: tuple[str, ...]
    answer: str | None
    problem: str | None
    contacts_version: int | None
    finished_at: datetime | None


@contextlib.contextmanager
def _writing(store: EventStore) -> Iterator[sa.Connection]:
    """A write transaction; on SQLite one that takes the write lock up front (BEGIN
    IMMEDIATE), so a relay waits its turn behind an append instead of failing at once with
    "database is locked" when its read would have to become a write."""
    with store.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, \
            conn.begin():
        yield conn


def _notice(row: Any) -> OutboxNotice:
    return OutboxNotice(id=row.id, event_id=row.event_id, case_id=row.case_id,
                        recipient=row.recipient, subject=row.subject, body=row.body,
                        created_at=as_utc(row.created_at), notice=row.notice)


def _insert_ignoring_conflict(store: EventStore) -> Any:
    dialect = store.engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(deliveries).on_conflict_do_nothing(index_elements=["outbox_id"])


def claim_due(store: EventStore, *, now: datetime, lease: timedelta, relay: str,
              limit: int = 100) -> list[ClaimedNotice]:
    """Claim up to `limit` notices that are due, oldest first: never attempted, or pending
    with their retry time come and no live claim. Each claim is a conditional write, so two
    relays never claim the same notice; the claim lasts `lease`."""
    o, d = outbox, deliveries
    due = (sa.select(o, d.c.attempts, d.c.outbox_id.label("tracked"))
           .select_from(o.outerjoin(d, d.c.outbox_id == o.c.id))
           .where(sa.or_(d.c.outbox_id.is_(None),
                         sa.and_(d.c.status == "pending", d.c.next_attempt_at <= now,
                                 sa.or_(d.c.claimed_until.is_(None),
                                        d.c.claimed_until < now))))
           .order_by(o.c.id).limit(limit))
    until = now + lease
    claimed: list[ClaimedNotice] = []
    with store.engine.connect() as conn:
        candidates = conn.execute(due).all()
    if not candidates:  # the common case, every poll: no write lock taken
        return claimed
    with _writing(store) as conn:
        for row in candidates:
            if row.tracked is None:
                won = conn.execute(_insert_ignoring_conflict(store).values(
                    outbox_id=row.id, status="pending", attempts=0, next_attempt_at=now,
                    claimed_until=until, claimed_by=relay)
                    .returning(d.c.outbox_id)).first() is not None
            else:
                won = conn.execute(
                    d.update().where(d.c.outbox_id == row.id, d.c.status == "pending",
                                     sa.or_(d.c.claimed_until.is_(None),
                                            d.c.claimed_until < now))
                    .values(claimed_until=until, claimed_by=relay)).rowcount == 1
            if won:
                claimed.append(ClaimedNotice(_notice(row), row.attempts or 0))
    return claimed


def record_outcomes(store: EventStore, done: Sequence[tuple[ClaimedNotice, Outcome]], *,
                    now: datetime, relay: str) -> int:
    """Record attempts' outcomes in one transaction, each only if this relay still holds its
    claim (one that lapsed was taken over, and the other relay's record stands); returns how
    many were recorded. One transaction for a run of sends: on SQLite each commit is a sync
    to disk, shared with every append."""
    d = deliveries
    recorded = 0
    with _writing(store) as conn:
        for claimed, outcome in done:
            values: dict[str, Any] = {
                "status": outcome.status, "attempts": claimed.attempts + 1,
                "claimed_until": None, "claimed_by": None, "message_id": outcome.message_id,
                "sent_to": ", ".join(outcome.sent_to) or None, "answer": outcome.answer,
                "problem": outcome.problem, "contacts_version": outcome.contacts_version,
            }
            if outcome.status == "pending":
                values["next_attempt_at"] = outcome.retry_at or now
            else:
                values["finished_at"] = now
            result = conn.execute(d.update().where(d.c.outbox_id == claimed.notice.id,
                                                   d.c.claimed_by == relay,
                                                   d.c.status == "pending").values(**values))
            recorded += result.rowcount
    return recorded


def release(store: EventStore, claimed: Sequence[ClaimedNotice], *, retry_at: datetime,
            relay: str, problem: str) -> None:
    """Hand notices back untried (the server could not be reached): due again at
    `retry_at`, the attempt not counted against them."""
    d = deliveries
    with _writing(store) as conn:
        for c in claimed:
            conn.execute(d.update().where(d.c.outbox_id == c.notice.id, d.c.claimed_by == relay,
                                          d.c.status == "pending")
                         .values(claimed_until=None, claimed_by=None, next_attempt_at=retry_at,
                                 problem=problem))


def deliveries_of(store: EventStore, *, case_id: str | None = None,
                  status: DeliveryStatus | None = None, now: datetime,
                  limit: int | None = None) -> list[NoticeDelivery]:
    """Outbox notices with their delivery, oldest first; of one case, or in one status."""
    o, d = outbox, deliveries
    query = (sa.select(o, d.c.status, d.c.attempts, d.c.claimed_until, d.c.next_attempt_at,
                       d.c.message_id, d.c.sent_to, d.c.answer, d.c.problem,
                       d.c.contacts_version, d.c.finished_at)
             .select_from(o.outerjoin(d, d.c.outbox_id == o.c.id)).order_by(o.c.id))
    if case_id is not None:
        query = query.where(o.c.case_id == case_id)
    if status == "pending":
        query = query.where(sa.or_(d.c.status.is_(None), d.c.status == "pending"))
    elif status is not None:
        query = query.where(d.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [NoticeDelivery(
        notice=_notice(r), status=r.status or "pending", attempts=r.attempts or 0,
        sending=r.claimed_until is not None and as_utc(r.claimed_until) > now,
        next_attempt_at=as_utc(r.next_attempt_at) if r.next_attempt_at else None,
        message_id=r.message_id,
        sent_to=tuple(a for a in (r.sent_to or "").split(", ") if a), answer=r.answer,
        problem=r.problem, contacts_version=r.contacts_version,
        finished_at=as_utc(r.finished_at) if r.finished_at else None) for r in rows]


def waiting_count(store: EventStore) -> int:
    """Notices not yet finished (never attempted, or pending a retry)."""
    o, d = outbox, deliveries
    query = (sa.select(sa.func.count()).select_from(o.outerjoin(d, d.c.outbox_id == o.c.id))
             .where(sa.or_(d.c.status.is_(None), d.c.status == "pending")))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def notices_for_case(store: EventStore, case_id: str) -> list[OutboxNotice]:
    """The outbox notices one case's events caused, in the order they were written."""
    query = sa.select(outbox).where(outbox.c.case_id == case_id).order_by(outbox.c.id)
    with store.engine.connect() as conn:
        return [_notice(r) for r in conn.execute(query)]
